"""Settings: defaults, then instance/config.py, then OTA_* and MQTT_* environment variables."""
import ipaddress
import os
import ssl

from .device_rules import host_problem, port_problem, trigger_parser


class ConfigError(Exception):
    """A setting has a value the app cannot use; the message names the setting."""


def _port_range(text):
    """'50000-50100' -> (50000, 50100); '' -> None (ephemeral ports)."""
    # (_port_range.need, below, is what a bad value's message asks for)
    if not text:
        return None
    lo, sep, hi = str(text).partition("-")
    lo, hi = int(lo), int(hi or lo)
    if not (0 < lo <= hi < 65536):
        raise ValueError(text)
    return (lo, hi)


_port_range.need = "a port or a range of ports 1-65535, low-high, such as 50000-50100"


def _bool(text):
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


# name: (default, parser). Every key may be set in instance/config.py or the environment.
SETTINGS = {
    # Where devices reach this server; None picks this host's address (see netinfo.py).
    "OTA_ADVERTISE_HOST": (None, str),
    "OTA_TRANSFER_BIND": ("0.0.0.0", str),
    "OTA_TRANSFER_PORTS": (None, _port_range),
    "OTA_TRANSFER_TIMEOUT": (30.0, float),
    # From the last byte sent until the device is back online with the new file.
    "OTA_CONFIRM_TIMEOUT": (90.0, float),
    # A known device that is offline: how long a push waits for it to come back.
    "OTA_OFFLINE_WAIT": (24 * 3600.0, float),
    # Transient failures (no connection, a broken transfer) are tried again this many times,
    # after OTA_RETRY_BACKOFF seconds, doubling each time.
    "OTA_RETRIES": (2, int),
    "OTA_RETRY_BACKOFF": (5.0, float),
    "OTA_MAX_UPLOAD": (16 * 1024 * 1024, int),
    "OTA_HEARTBEAT_MISSES": (3, int),
    "OTA_DATABASE": (None, str),
    "OTA_FILE_STORE": (None, str),
    "OTA_EMBEDDED_BROKER_BIND": ("0.0.0.0", str),
    "OTA_EMBEDDED_BROKER_PORT": (1883, int),
    "OTA_SECRET_KEY": (None, str),
    # Served over HTTPS (directly or behind a proxy): session cookies get the Secure flag.
    "OTA_HTTPS": (False, _bool),
    # flask-mqtt's own keys. No MQTT_BROKER_URL means: run the embedded broker.
    "MQTT_BROKER_URL": (None, str),
    "MQTT_BROKER_PORT": (1883, int),
    "MQTT_USERNAME": (None, str),
    "MQTT_PASSWORD": (None, str),
    "MQTT_KEEPALIVE": (30, int),
    "MQTT_CLIENT_ID": (None, str),
    "MQTT_TLS_ENABLED": (False, _bool),
    "MQTT_TLS_CA_CERTS": (None, str),
    "MQTT_TLS_CERTFILE": (None, str),
    "MQTT_TLS_KEYFILE": (None, str),
    "MQTT_TLS_INSECURE": (False, _bool),
    # flask-mqtt's own default is TLS 1.0 only, which current brokers refuse.
    "MQTT_TLS_VERSION": (ssl.PROTOCOL_TLS_CLIENT, int),
}


# Read by the process, not the app: the data folder (webapp/__init__.py) and gunicorn's own
# (webapp/gunicorn_conf.py).
PROCESS_SETTINGS = ("OTA_DATA_DIR", "OTA_HTTP_BIND", "OTA_HTTP_THREADS", "OTA_HTTP_ACCESS_LOG")


def unknown(environ):
    """The OTA_* names in `environ` that no setting has: a typo, most likely."""
    return sorted(n for n in environ if n.startswith("OTA_") and n not in SETTINGS
                  and n not in PROCESS_SETTINGS)


def defaults(instance_path):
    conf = {name: default for name, (default, _) in SETTINGS.items()}
    conf["OTA_DATABASE"] = os.path.join(instance_path, "dcc-ota.sqlite")
    conf["OTA_FILE_STORE"] = os.path.join(instance_path, "files")
    return conf


def from_environ(environ):
    """The settings present in `environ`, parsed; ConfigError names the first bad one."""
    found = {}
    for name, (_, parse) in SETTINGS.items():
        if name in environ:
            found[name] = parse_setting(name, environ[name])
    return found


def parse_setting(name, raw):
    _, parse = SETTINGS[name]
    try:
        return parse(raw)
    except (TypeError, ValueError):
        need = getattr(parse, "need", None)
        raise ConfigError("%s=%r is not valid%s" % (name, raw, ": " + need if need else "")) \
            from None


def finish(conf):
    """Derived values and cross-checks, after every source has been applied."""
    if conf["OTA_TRANSFER_TIMEOUT"] <= 0:
        raise ConfigError("OTA_TRANSFER_TIMEOUT must be more than 0 seconds")
    if conf["OTA_MAX_UPLOAD"] <= 0:
        raise ConfigError("OTA_MAX_UPLOAD must be more than 0 bytes")
    if conf["OTA_RETRIES"] < 0 or conf["OTA_RETRY_BACKOFF"] < 0:
        raise ConfigError("OTA_RETRIES and OTA_RETRY_BACKOFF cannot be negative")
    if conf["OTA_HEARTBEAT_MISSES"] < 1:
        raise ConfigError("OTA_HEARTBEAT_MISSES must be at least 1")
    if isinstance(conf.get("OTA_TRANSFER_PORTS"), str):
        conf["OTA_TRANSFER_PORTS"] = parse_setting("OTA_TRANSFER_PORTS", conf["OTA_TRANSFER_PORTS"])
    _check_what_devices_see(conf)
    conf["MAX_CONTENT_LENGTH"] = conf["OTA_MAX_UPLOAD"] + 64 * 1024  # room for the form fields
    return conf


def _ip(text):
    """An ipaddress object, or None for a host name."""
    try:
        return ipaddress.ip_address(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _check_what_devices_see(conf):
    """What goes into a trigger passes the device's own parser (device_rules), and the
    transfer socket listens where the trigger sends the devices."""
    trigger_parser()  # a missing firmware/ stops the start, not the first push's guess
    host = conf.get("OTA_ADVERTISE_HOST")
    why = host_problem(host) if host else None
    if why:
        raise ConfigError("OTA_ADVERTISE_HOST=%r is refused by the devices (%s): give an IPv4 "
                          "address or a host name of letters, digits, '.', '-', '_'" % (host, why))
    ports = conf.get("OTA_TRANSFER_PORTS")
    if ports is not None:  # a pair from instance/config.py skipped the environment's parser
        if (not isinstance(ports, (tuple, list)) or len(ports) != 2 or ports[0] > ports[1]
                or any(not isinstance(p, int) or port_problem(p) for p in ports)):
            raise ConfigError("OTA_TRANSFER_PORTS=%r is not valid: a range of ports 1-65535 "
                              "such as 50000-50100" % (ports,))
        conf["OTA_TRANSFER_PORTS"] = tuple(ports)
    _check_transfer_bind(conf["OTA_TRANSFER_BIND"], host)
    for name in ("MQTT_BROKER_PORT", "OTA_EMBEDDED_BROKER_PORT"):  # go into settings.json
        why = port_problem(conf[name]) if isinstance(conf[name], int) else "not a number"
        if why:
            raise ConfigError("%s=%r is refused by the devices (%s): a port 1-65535"
                              % (name, conf[name], why))


def _check_transfer_bind(raw, host):
    bind = _ip(raw)
    if bind is None or raw == "::" or bind.is_unspecified and bind.version == 4:
        return  # a name, or every address (transfer.py takes '::' as 0.0.0.0)
    if bind.version == 6:
        raise ConfigError("OTA_TRANSFER_BIND=%s is an IPv6 address, and devices connect over "
                          "IPv4: use 0.0.0.0 or an IPv4 address of this host" % raw)
    # Loopback is sure to be out of reach from any other address; other pairs may meet by NAT.
    if not host:  # the guess is loopback only while no network is up
        if bind.is_loopback:
            raise ConfigError("OTA_TRANSFER_BIND=%s takes connections from this host only: set "
                              "OTA_ADVERTISE_HOST=%s too (devices on this host), or bind 0.0.0.0"
                              % (raw, raw))
        return
    advertised = _ip(host)
    if advertised and advertised != bind and (bind.is_loopback or advertised.is_loopback):
        raise ConfigError("OTA_TRANSFER_BIND=%s cannot be reached by devices sent to "
                          "OTA_ADVERTISE_HOST=%s: bind 0.0.0.0 or %s" % (raw, host, host))
