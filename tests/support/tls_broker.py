"""A mosquitto that refuses anonymous clients: TLS with a test CA, a password for the server
(dcc-ota / "server secret") and one device (lamp1 / "lamp secret"), and an ACL that lets each
device write only its own topics (docs/security.md)."""
import contextlib
import subprocess

from tests.support.mosquitto import Mosquitto

USERS = {"dcc-ota": "server secret", "lamp1": "lamp secret"}


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d):
    """ca.pem signs server.pem (for 127.0.0.1); other.pem is a CA that signed nothing here."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
             "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other",
             "-keyout", "other.key", "-out", "other.pem", cwd=d)


@contextlib.contextmanager
def secured_mosquitto(d):
    """Yields the running broker; certificates and files are in folder `d`."""
    make_certificates(d)
    for n, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if n == 0 else [])
                       + [str(d / "passwd"), user, password], check=True, capture_output=True)
    (d / "acl").write_text("user dcc-ota\ntopic readwrite #\n"
                           "pattern readwrite %u/#\n")  # a device may use only its own topics
    options = ("cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n"
               "password_file {0}/passwd\nacl_file {0}/acl".format(d))
    with Mosquitto(listener_options=options, anonymous=False) as broker:
        yield broker
