"""The server's broker connection with TLS and a password, against a real mosquitto that
refuses anonymous clients and lets each device write only its own topics (docs/security.md)."""
import pytest

from tests.support.tls_broker import secured_mosquitto
from tests.support.waiting import wait_until
from webapp import create_app
from webapp.services import start_services, stop_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    with secured_mosquitto(d) as broker:
        yield broker, d


def server_app(tmp_path, broker, certs, password):
    return create_app({
        "OTA_DATABASE": str(tmp_path / "db.sqlite"), "OTA_FILE_STORE": str(tmp_path / "files"),
        "MQTT_BROKER_URL": "127.0.0.1", "MQTT_BROKER_PORT": broker.port,
        "MQTT_TLS_ENABLED": True, "MQTT_TLS_CA_CERTS": str(certs / "ca.pem"),
        "MQTT_USERNAME": "dcc-ota", "MQTT_PASSWORD": password})


def test_the_server_connects_with_tls_and_its_password(tls_broker, tmp_path):
    broker, certs = tls_broker
    app = server_app(tmp_path, broker, certs, "server secret")
    services = start_services(app)
    try:
        assert services.bus.wait_connected(15)
        assert services.bus.sync(5)  # it can publish and subscribe through the ACL
    finally:
        stop_services(app)


def test_a_wrong_password_is_refused(tls_broker, tmp_path):
    broker, certs = tls_broker
    app = server_app(tmp_path, broker, certs, "guess")
    services = start_services(app)
    try:
        assert not services.bus.wait_connected(3)
        refused = wait_until(lambda: services.bus.refused, 10, what="the refusal to be noted")
        assert "bad user name or password" in refused or "not authorised" in refused
    finally:
        stop_services(app)


def test_a_device_can_write_only_its_own_topics(tls_broker, tmp_path):
    import ssl
    import paho.mqtt.client as mqtt
    broker, certs = tls_broker
    app = server_app(tmp_path, broker, certs, "server secret")
    services = start_services(app)
    lamp = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lamp1")
    lamp.username_pw_set("lamp1", "lamp secret")
    lamp.tls_set(ca_certs=str(certs / "ca.pem"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    try:
        assert services.bus.wait_connected(15)
        lamp.connect("127.0.0.1", broker.port)
        lamp.loop_start()
        beat = b'{"online": true, "interval": 60}'
        lamp.publish("lamp2/status", beat).wait_for_publish(5)  # pretending to be another
        lamp.publish("lamp1/status", beat).wait_for_publish(5)
        registry = app.extensions["dcc_ota"].registry
        from webapp.db import get_db
        with app.app_context():
            wait_until(lambda: registry.get(get_db(), "lamp1"), 10, what="lamp1's heartbeat")
            assert services.bus.sync(5)
            assert registry.get(get_db(), "lamp2") is None
    finally:
        lamp.loop_stop()
        lamp.disconnect()
        stop_services(app)
