"""The ESP8266 budget: a device with a 24wK heap boots and takes a 200 KB file."""
import hashlib
import os

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import MqttWatcher, OneShotSender, heartbeat_pred

pytestmark = pytest.mark.integration

DEV = "small-heap"


def test_200k_push_at_24wK_heap(mosquitto, tmp_path):
    data = os.urandom(200 * 1024)
    sha1 = hashlib.sha1(data).hexdigest()
    with MqttWatcher(mosquitto.port) as w:
        dev = SimDevice(DEV, tmp_path / DEV, broker_port=mosquitto.port, heap="24wK",
                        heartbeat=5)
        with dev.seed():
            hb0 = w.wait_json(DEV + "/status", heartbeat_pred(), timeout=20)
            mark = w.mark()
            with OneShotSender(data) as tx:
                w.publish(DEV + "/OTA", tx.trigger("data/blob.bin"))
                final = w.wait_json(DEV + "/ota/status", tx.outcome, since=mark, timeout=60)
            assert final["state"] == "rebooting", final
            hb = w.wait_json(DEV + "/status", heartbeat_pred(boot=hb0["boot"] + 1),
                             since=mark, timeout=30)
            assert hb["files"]["data/blob.bin"] == sha1
            assert (dev.flash_dir / "data" / "blob.bin").read_bytes() == data
            assert dev.boots == 2
        assert "MemoryError" not in dev.log_text(), dev.log_text()
