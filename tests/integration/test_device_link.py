"""The device's MQTT link over time (firmware/mqtt_client.py keep_alive, real mosquitto)."""
import time

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import heartbeat_pred

pytestmark = pytest.mark.integration


def test_a_device_that_publishes_often_keeps_its_link(mosquitto, watcher, tmp_path):
    # Heartbeats every second keep the broker hearing from the device, but the broker says
    # nothing back unless asked: the device must still ping, or it calls the broker silent
    # after 1.5 keepalives, drops the link and the broker publishes its last will (the
    # server shows it offline for a moment, again and again).
    name = "link-keep"
    dev = SimDevice(name, tmp_path / name, broker_port=mosquitto.port, heartbeat=1,
                    settings={"keepalive": 3})
    with dev.seed():
        watcher.wait_json(name + "/status", heartbeat_pred(), timeout=20)
        mark = watcher.mark()
        time.sleep(7)  # past 1.5 keepalives, twice
        statuses = watcher.all_json(name + "/status", since=mark)
    assert len(statuses) >= 6
    assert all(s.get("online") for s in statuses), statuses
    assert "link down" not in dev.log_text(), dev.log_text()
    assert dev.log_text().count("connected to") == 1
