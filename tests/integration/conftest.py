"""Fixtures for the server against a real broker (mosquitto; RabbitMQ in test_rabbitmq.py) and
real simulated MicroPython devices."""
import contextlib
import os
import secrets
import shutil

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import MqttWatcher, heartbeat_pred
from tests.support.rabbitmq import RabbitMQ, installed as rabbitmq_installed
from webapp import create_app
from webapp.services import start_services, stop_services

HEARTBEAT_S = 2
# Devices confirm an update after 1 s of healthy running instead of a board's 30 s.
FAST = {"confirm_after": 1}


def server_config(broker, tmp_path, **over):
    """The settings a test server and its CLI share: same database, store and broker."""
    conf = {
        "OTA_DATABASE": str(tmp_path / "dcc-ota.sqlite"),
        "OTA_FILE_STORE": str(tmp_path / "files"),
        "MQTT_BROKER_URL": "127.0.0.1",
        "MQTT_BROKER_PORT": broker.port,
        "OTA_ADVERTISE_HOST": "127.0.0.1",
        "OTA_TRANSFER_BIND": "127.0.0.1",
        "OTA_TRANSFER_TIMEOUT": 5.0,
        "OTA_CONFIRM_TIMEOUT": 30.0,
        "OTA_OFFLINE_WAIT": 2.0,
        "OTA_RETRY_BACKOFF": 0.2,
    }
    conf.update(over)
    return conf


@pytest.fixture(scope="session")
def rabbitmq():
    """A real RabbitMQ node with its MQTT plugin on free loopback ports (issue 13: nothing may
    depend on mosquitto's quirks), started once for the session's tests that ask for it."""
    if not rabbitmq_installed():
        pytest.skip("rabbitmq-server is not installed (.ci/run installs it)")
    with RabbitMQ() as broker:
        yield broker


@pytest.fixture
def unique():
    """Device ids unique to a test: the broker (and its retained messages) is shared."""
    def make(prefix="dev"):
        return "%s-%s" % (prefix, secrets.token_hex(3))
    return make


@pytest.fixture
def broker(mosquitto):
    """The broker of `server` and `devices`: mosquitto, unless a module overrides it
    (test_rabbitmq.py)."""
    return mosquitto


@pytest.fixture
def server(broker, tmp_path):
    """The app with its services running, as in a gunicorn worker (role 'server')."""
    app = create_app(server_config(broker, tmp_path))
    services = start_services(app, role="server")
    assert services.bus.wait_connected(10), "the server could not reach the broker"
    yield app
    stop_services(app)


@pytest.fixture
def devices(broker, tmp_path):
    """Start simulated devices: devices(name, heap='38wK') -> a running SimDevice."""
    started = []

    def start(name, heap="38wK", flash=None, broker_port=None, settings=None, **kw):
        dev = SimDevice(name, flash or tmp_path / "flash" / name,
                        broker_port=broker_port or broker.port, heap=heap,
                        heartbeat=HEARTBEAT_S, settings=dict(FAST, **(settings or {})), **kw)
        started.append(dev)
        return dev.start()
    yield start
    for dev in started:
        dev.stop()
        if os.environ.get("KEEP_SIM_LOGS") is None:
            shutil.rmtree(dev.flash_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def watcher(mosquitto):
    """Every message on the broker, recorded, for the tests of one module."""
    with MqttWatcher(mosquitto.port) as w:
        yield w


@contextlib.contextmanager
def running_device(name, mosquitto, watcher, tmp_path_factory):
    """A device that has sent its first heartbeat; its log must hold no traceback at the end."""
    dev = SimDevice(name, tmp_path_factory.mktemp("sim") / name, broker_port=mosquitto.port,
                    heartbeat=HEARTBEAT_S, settings=FAST)
    dev.seed().start()
    try:
        watcher.wait_json(name + "/status", heartbeat_pred(), timeout=20)
        yield dev
    finally:
        dev.stop()
    assert "Traceback" not in dev.log_text(), dev.log_text()
