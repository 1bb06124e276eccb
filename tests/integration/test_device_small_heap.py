"""The ESP8266 budget: a device with a small heap boots and takes a 200 KB file.

Issue 2 set the budget at `-X heapsize=24wK`: the runtime with the night lamp takes a 200 KB
file there, compiled on the device from source or precompiled as the README sets up a small
board. Both rows guard it: every interned name and every line compiled on the device counts
(firmware/README.md, "Memory"). The server's push, a bundle with probation, is guarded in
test_push_server.py.
"""
import hashlib
import os

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import MqttWatcher, OneShotSender, heartbeat_pred

pytestmark = pytest.mark.integration

CASES = [
    pytest.param("24wK", True, {}, id="precompiled-with-lamp-24wK"),
    pytest.param("24wK", False, {}, id="source-with-lamp-24wK"),
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


def test_a_push_that_does_not_fit_the_heap_fails_clearly_and_the_device_runs_on(mosquitto,
                                                                                 tmp_path):
    # Compiled on the device, a bundle's code compiles at push time: at 24wK there is no
    # room for that. The push must fail with a named reason, the flash keep nothing of it,
    # and the device keep running (no reboot) and take the next push that does fit.
    name = "small-nomem"
    data = os.urandom(20 * 1024)
    head = ("%s %d lib/blob.bin\n" % (hashlib.sha1(data).hexdigest(), len(data))).encode()
    with MqttWatcher(mosquitto.port) as w:
        dev = SimDevice(name, tmp_path / name, broker_port=mosquitto.port, heap="24wK",
                        heartbeat=2)
        with dev.seed():
            hb0 = w.wait_json(name + "/status", heartbeat_pred(), timeout=20)
            before = sorted(dev.listing())
            mark = w.mark()
            with OneShotSender(head, serve=head + data) as tx:
                w.publish(name + "/OTA", tx.trigger("bundle", extra="|bundle=1"))
                final = w.wait_json(name + "/ota/status", tx.outcome, since=mark, timeout=30)
            assert (final["state"], final["reason"]) == ("failed", "no memory"), final
            assert final["detail"] == "the heap is too full or fragmented"
            mark = w.mark()
            hb = w.wait_json(name + "/status", heartbeat_pred(), since=mark, timeout=10)
            assert hb["boot"] == hb0["boot"] and dev.boots == 1
            assert sorted(dev.listing()) == before

            with OneShotSender(data) as tx:  # the single-file form fits
                w.publish(name + "/OTA", tx.trigger("lib/blob.bin"))
                final = w.wait_json(name + "/ota/status", tx.outcome, since=mark, timeout=30)
            assert final["state"] == "rebooting", final
            w.wait_json(name + "/status", heartbeat_pred(boot=hb0["boot"] + 1), since=mark,
                        timeout=30)
            assert dev.read_file("lib/blob.bin") == data
