"""The ESP8266 budget: a device with a small heap boots and takes a 200 KB file.

Issue 2 set the budget at `-X heapsize=24wK`. The runtime as the README sets up a small board
(precompiled, with the night lamp) takes a 200 KB file there. Compiled on the device it needs
27wK: compiling holds the parse tree of a whole module and leaves the heap fragmented. The
rows below guard those floors so they do not grow; the strict xfail row is the budget still to
win for source: it fails loudly the day it passes, so that it can become a guard.
(The server's push, a bundle with probation: test_push_server.py.)
"""
import hashlib
import os

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import MqttWatcher, OneShotSender, heartbeat_pred

pytestmark = pytest.mark.integration

CASES = [
    pytest.param("24wK", True, {}, id="precompiled-with-lamp-24wK"),
    pytest.param("27wK", False, {}, id="source-with-lamp-27wK"),
    pytest.param("24wK", False, {}, id="source-with-lamp-24wK", marks=pytest.mark.xfail(
        strict=True, reason="compiled on the device, the firmware with the lamp needs 27wK "
                            "(issue 2)")),
]


@pytest.mark.parametrize("heap, precompiled, settings", CASES)
def test_200k_push_on_a_small_heap(mosquitto, tmp_path, heap, precompiled, settings):
    name = "small-%s-%s" % (heap, "mpy" if precompiled else "py")
    data = os.urandom(200 * 1024)
    sha1 = hashlib.sha1(data).hexdigest()
    with MqttWatcher(mosquitto.port) as w:
        dev = SimDevice(name, tmp_path / name, broker_port=mosquitto.port, heap=heap,
                        heartbeat=5, precompiled=precompiled, settings=settings)
        with dev.seed():
            hb0 = w.wait_json(name + "/status", heartbeat_pred(), timeout=20)
            mark = w.mark()
            with OneShotSender(data) as tx:
                w.publish(name + "/OTA", tx.trigger("data/blob.bin"))
                final = w.wait_json(name + "/ota/status", tx.outcome, since=mark, timeout=60)
            assert final["state"] == "rebooting", final
            hb = w.wait_json(name + "/status", heartbeat_pred(boot=hb0["boot"] + 1),
                             since=mark, timeout=30)
            assert hb["files"]["data/blob.bin"] == sha1
            assert dev.read_file("data/blob.bin") == data
            assert dev.boots == 2
        assert "MemoryError" not in dev.log_text(), dev.log_text()
