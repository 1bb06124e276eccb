"""Precompiled firmware (.mpy from mpy-cross): what a board short of RAM runs.

Issue 3's target is 20wK with the night lamp, the same for every file size. At 20wK a push
goes through or not with the heap's layout (the device's name is enough to tip it); from 21wK
it goes through for any name (`make bench` probes random ones). The row guards 21wK: every
interned name and every byte held at idle counts (firmware/README.md, "Memory")."""
import hashlib
import os

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import MqttWatcher, OneShotSender, heartbeat_pred

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("heap", ["21wK"])
def test_a_precompiled_device_takes_a_64k_push_and_reports_its_heap(mosquitto, tmp_path, heap):
    data = os.urandom(64 * 1024)
    DEV = "mpy-" + heap
    with MqttWatcher(mosquitto.port) as w:
        dev = SimDevice(DEV, tmp_path / DEV, broker_port=mosquitto.port, heap=heap,
                        heartbeat=5, precompiled=True)
        with dev.seed():
            flash = sorted(p.name for p in dev.flash_dir.iterdir())
            assert "runtime.mpy" in flash and "main.py" in flash and "runtime.py" not in flash
            hb0 = w.wait_json(DEV + "/status", heartbeat_pred(), timeout=20)
            assert hb0["plugins"]["lamp"] == {"relay": False, "led": False}
            mark = w.mark()
            with OneShotSender(data) as tx:
                w.publish(DEV + "/OTA", tx.trigger("blob.bin"))
                verified = w.wait_json(DEV + "/ota/status", lambda d: d.get("state") in (
                    "verified", "failed"), since=mark, timeout=30)
            assert verified["state"] == "verified", verified
            # the 1 KB buffer and its bookkeeping, whatever the file's size
            assert 1024 < verified["heap"] < 4096
            hb = w.wait_json(DEV + "/status", heartbeat_pred(boot=hb0["boot"] + 1),
                             since=mark, timeout=30)
            assert hb["files"]["blob.bin"] == hashlib.sha1(data).hexdigest()
        assert "MemoryError" not in dev.log_text(), dev.log_text()
