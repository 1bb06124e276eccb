"""The server and the real firmware through RabbitMQ's MQTT plugin instead of mosquitto.

Issue 13: nothing may depend on one broker's quirks. RabbitMQ (a broker that clusters) serves
QoS 0/1 only, delivers no retained message to a wildcard subscription (the server's `+/status`),
tracks client ids across its cluster and is strict about keepalives; a push, a device going
away and a device the broker dropped must all still work through it.
"""
import io

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import CallbackAPIVersion

from tests.integration.test_push_cli import cli_env, ota
from tests.integration import test_push_server
from tests.support.app import registered, take_offline
from tests.support.devices import MqttWatcher, heartbeat_pred
from tests.support.files import padded_main_py
from tests.support.waiting import wait_until
from webapp import extension
from webapp.db import get_db
from webapp.rollout.store import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(rabbitmq):
    """conftest's `server` and `devices` run on RabbitMQ in this module."""
    return rabbitmq


# mosquitto's own push test, run here on RabbitMQ (this module's `broker`): the same steps,
# the same timeline, the same file on the flash
test_a_main_py_pushed_through_rabbitmq_arrives_and_the_device_reboots_with_it = \
    test_push_server.test_a_3_8kb_main_py_arrives_and_the_device_reboots_with_it


def test_a_device_that_stops_is_shown_offline_through_rabbitmq(server, devices, unique):
    name = unique("rgone")
    dev = devices(name)
    registered(server, name, lambda d: d.online)

    gone = take_offline(server, dev)  # killed: RabbitMQ publishes its last will

    assert not gone.online
    assert gone.note is None  # the last will's doing, not "missed 3 heartbeats"


def test_a_device_the_broker_drops_comes_back_on_its_own(server, devices, unique, rabbitmq):
    # A client that connects with the device's client id makes RabbitMQ close the device's
    # connection (client ids are tracked across the cluster); the device must notice, connect
    # again on its own and be online with the same boot, not rebooted.
    name = unique("rdrop")
    dev = devices(name)
    first = registered(server, name, lambda d: d.online)
    with MqttWatcher(rabbitmq.port, topic=name + "/status") as watcher:
        squatter = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
        squatter.connect("127.0.0.1", rabbitmq.port)
        squatter.loop_start()
        try:
            wait_until(lambda: "link down" in dev.log_text(), 20, what="the device's link down")
        finally:
            squatter.disconnect()
            squatter.loop_stop()
        mark = watcher.mark()
        back = watcher.wait_json(name + "/status", heartbeat_pred(boot=first.boot), timeout=30,
                                 since=mark)
    assert back["boot"] == first.boot
    assert dev.boots == 1
    assert dev.log_text().count("connected to") >= 2
    assert registered(server, name, lambda d: d.online).boot == first.boot


def test_the_cli_alone_learns_the_device_from_its_retained_heartbeat(devices, unique,
                                                                     rabbitmq, tmp_path):
    # No server running: the CLI knows the device only from its retained heartbeat, which
    # RabbitMQ delivers to an exact topic filter and never to the bus's `+/status`.
    name = unique("rcli")
    dev = devices(name)
    with MqttWatcher(rabbitmq.port, topic=name + "/status") as watcher:
        watcher.wait_json(name + "/status", heartbeat_pred(), timeout=20)
    src = tmp_path / "main.py"
    src.write_bytes(padded_main_py(1200, tag="rabbit-cli"))

    env = cli_env(rabbitmq, tmp_path, OTA_OFFLINE_WAIT=10.0)
    done = ota(env, "push", str(src), "--device", name, "--wait")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "bundle form" in done.stdout
    assert (dev.flash_dir / "main.py").read_bytes() == src.read_bytes()
    listed = ota(env, "devices")  # the bus hears its own sync message back through RabbitMQ
    assert listed.returncode == 0, listed.stderr
    assert "broker unreachable" not in listed.stderr
    assert [line.split()[1] for line in listed.stdout.splitlines()
            if line.startswith(name + " ")] == ["online"]


def test_a_short_rollout_through_rabbitmq_goes_canary_first_and_ends_done(
        server, devices, unique):
    names = [unique("rroll") for _ in range(3)]
    devs = {n: devices(n) for n in names}
    for n in names:
        registered(server, n, lambda d: d.online and "bundle" in d.features)
    app_py = b"# through rabbitmq\nLEVEL = 3\n"
    with server.app_context():
        ext, db = extension.of(server), get_db()
        stored = ext.store.save(db, io.BytesIO(app_py), "app.py")
        ext.releases.create(db, "rabbit-1", [("app.py", stored)])
        rid = ext.rollouts.create(db, "rabbit-1", names, Settings(
            canary=1, wave_size=2, concurrency=2, auto_continue=True))

    def ended():
        with server.app_context():
            shown = extension.of(server).rollouts.describe(get_db(), rid)
        return shown if shown["state"] == "done" else None
    shown = wait_until(ended, 90, what="the rollout through RabbitMQ")

    assert {d["device"]: (d["wave"], d["state"]) for d in shown["devices"]} == {
        names[0]: (0, "done"), names[1]: (1, "done"), names[2]: (1, "done")}
    for dev in devs.values():
        assert dev.read_file("app.py") == app_py
