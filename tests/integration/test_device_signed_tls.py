"""The device's MQTT client (firmware/mqtt_client.py on the real MicroPython unix port) with
TLS and a password against a real mosquitto: the settings "tls" and "ca" (docs/security.md)."""
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from dcc_sim.launcher import find_micropython

from tests.support.tls_broker import secured_mosquitto
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = find_micropython()

# Connect, subscribe, publish one message and print the first three messages back; any failure
# prints its repr (what the runtime would log before its reconnect back-off).
SCRIPT = """
import sys
from mqtt_client import MQTTClient
port, user, pw, tls, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5]
mq = MQTTClient(b"lamp1", "127.0.0.1", port, user.encode(), pw.encode(), 30, tls, ca or None)
try:
    mq.connect()
    mq.subscribe(b"lamp1/OTA")
    mq.publish(b"lamp1/status", b'{"online":true}')
    print("connected")
    n = 0
    while n < 3:  # three messages back to back: some arrive buffered inside TLS
        m = mq.check_msg(100)
        if m:
            print("got", m[1].decode())
            n += 1
    mq.disconnect()
except OSError as e:
    print("error", repr(e))
"""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("devtls")
    with secured_mosquitto(d) as broker:
        yield broker, d


def flash(tmp_path, certs):
    f = tmp_path / "flash"
    f.mkdir()
    shutil.copy(ROOT / "firmware" / "mqtt_client.py", f)
    shutil.copy(ROOT / "firmware" / "mqtt_tls.py", f)  # imported at connect when tls is on
    shutil.copy(certs / "ca.pem", f)
    shutil.copy(certs / "other.pem", f)
    (f / "run.py").write_text(SCRIPT)
    return f


def start(f, port, user, pw, tls, ca):
    return subprocess.Popen([str(MICROPYTHON), "-X", "heapsize=38wK", "run.py", str(port), user,
                             pw, "1" if tls else "0", ca], cwd=f, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def server_client(broker, certs):
    import ssl
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dcc-ota")
    c.username_pw_set("dcc-ota", "server secret")
    c.tls_set(ca_certs=str(certs / "ca.pem"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    seen = []
    c.on_message = lambda cl, u, m: seen.append((m.topic, m.payload))
    c.connect("127.0.0.1", broker.port)
    c.subscribe("lamp1/status")
    c.loop_start()
    return c, seen


@pytest.mark.parametrize("ca", ["ca.pem", ""], ids=["checked", "unchecked"])
def test_the_device_client_talks_tls_with_its_password(tls_broker, tmp_path, ca):
    broker, certs = tls_broker
    f = flash(tmp_path, certs)
    srv, seen = server_client(broker, certs)
    dev = start(f, broker.port, "lamp1", "lamp secret", True, ca)
    try:
        # its publish crosses the broker, and a message for it comes back to it over TLS
        wait_until(lambda: ("lamp1/status", b'{"online":true}') in seen, 20,
                   what="the device's publish over TLS")
        for i in range(3):
            srv.publish("lamp1/OTA", "hello %d" % i)
        out, _ = dev.communicate(timeout=20)
        assert out.split("\n")[:4] == ["connected", "got hello 0", "got hello 1", "got hello 2"], out
    finally:
        dev.kill()
        srv.loop_stop()
        srv.disconnect()


@pytest.mark.parametrize("tls,user,pw,ca,expect", [
    (True, "lamp1", "guess", "ca.pem", "refused"),  # wrong password: CONNACK refusal
    (True, "lamp1", "lamp secret", "other.pem", "error"),  # a broker its CA did not sign
    (True, "lamp1", "lamp secret", "missing.pem", "settings ca: cannot read missing.pem"),
    (False, "lamp1", "lamp secret", "", "error"),  # plain MQTT on the TLS port
], ids=["wrong-password", "wrong-ca", "missing-ca", "no-tls"])
def test_the_device_client_fails_cleanly(tls_broker, tmp_path, tls, user, pw, ca, expect):
    broker, certs = tls_broker
    f = flash(tmp_path, certs)
    dev = start(f, broker.port, user, pw, tls, ca)
    try:
        out, _ = dev.communicate(timeout=30)
    finally:
        dev.kill()
    # an OSError the runtime's one reconnect path handles, never a crash
    assert out.startswith("error") and expect in out and "Traceback" not in out, out
    assert "connected" not in out
