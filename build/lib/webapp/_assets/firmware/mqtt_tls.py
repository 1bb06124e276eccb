# TLS for mqtt_client (settings "tls": true): wrap() is called after the TCP connect, and
# mqtt_client imports this module only then, so a device without TLS never compiles it.
# The socket is wrapped with MicroPython's ssl (or tls) module; with ca (one CA certificate,
# a PEM or DER file on flash) the broker's certificate must chain to it and match the host
# name, without it the link is encrypted but the broker is not authenticated. mbedTLS holds
# about 20-40 KB per connection: an ESP32 has that, an ESP8266 does not (its TLS, where
# built, cannot check certificates anyway). Every failure is an OSError (MQTTError).
from mqtt_client import MQTTError


def _der(cert):
    # PEM -> DER (the first certificate): some mbedTLS builds parse only DER.
    i = cert.find(b"-----BEGIN CERTIFICATE-----")
    if i < 0:
        return cert
    j = cert.find(b"-----END", i)
    if j < 0:
        return cert
    from binascii import a2b_base64

    try:
        return a2b_base64(cert[i + 27 : j])
    except ValueError:
        return cert


def wrap(sock, host, ca):
    # TLS over the connected socket sock to host, checked against the CA file ca (or None).
    try:
        import ssl
    except ImportError:
        try:
            import tls as ssl
        except ImportError:
            raise MQTTError("settings tls: this board's MicroPython has no ssl module")
    cadata = None
    if ca:
        try:
            with open(ca, "rb") as f:
                cadata = f.read()
        except OSError:
            raise MQTTError("settings ca: cannot read %s" % ca)
        cadata = _der(cadata)
    if hasattr(ssl, "SSLContext"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cadata:
            try:
                ctx.load_verify_locations(cadata=cadata)
            except (ValueError, OSError):
                raise MQTTError("settings ca: %s is not a PEM or DER certificate" % ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        cadata = None
        w = ctx.wrap_socket
    elif cadata:
        # older ports (ESP8266, axTLS) cannot check a certificate
        raise MQTTError("settings ca: this board's ssl cannot check certificates")
    else:
        w = ssl.wrap_socket
    try:
        return w(sock, server_hostname=host)
    except ValueError as e:
        # mbedTLS reports a failed handshake (a certificate that does not chain to ca,
        # a name mismatch) as ValueError: make it a link failure like any other
        raise MQTTError("TLS handshake: %s" % str(e).strip())
