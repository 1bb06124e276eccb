"""Pushes to a real simulated device (firmware/ on MicroPython) through a real mosquitto."""
import hashlib
from pathlib import Path

import pytest

from tests.integration.conftest import running_device
from tests.support.files import padded_main_py
from tests.support.devices import (OneShotSender, flash_listing,
                                   heartbeat_pred)

pytestmark = pytest.mark.integration

DEV = "ota-dev"


@pytest.fixture(scope="module")
def device(mosquitto, watcher, tmp_path_factory):
    with running_device(DEV, mosquitto, watcher, tmp_path_factory) as dev:
        yield dev


def online_after(watcher, mark):
    """A heartbeat published after mark (the device is still alive)."""
    return watcher.wait_json(DEV + "/status", heartbeat_pred(), since=mark, timeout=10)


def push(watcher, data, name, mode="ext", serve=None, **trig):
    mark = watcher.mark()
    with OneShotSender(data, serve=serve, mode=mode) as tx:
        watcher.publish(DEV + "/OTA", tx.trigger(name, **trig))
        final = watcher.wait_json(DEV + "/ota/status", tx.outcome, since=mark, timeout=30)
    states = [s["state"] for s in watcher.all_json(DEV + "/ota/status", since=mark)
              if s.get("token") == final["token"]]
    return final, states, mark


def test_push_main_py_reboots_with_new_file(device, watcher):
    data = padded_main_py(3800)
    assert len(data) == 3800
    sha1 = hashlib.sha1(data).hexdigest()
    boots = device.boots
    hb0 = watcher.latest_json(DEV + "/status", heartbeat_pred())
    final, states, mark = push(watcher, data, "main.py")
    assert final["state"] == "rebooting", final
    assert states[:4] == ["connecting", "connected", "verified", "rebooting"], states
    verified = watcher.all_json(DEV + "/ota/status", since=mark)[2]
    assert verified["sha1"] == sha1 and verified["bytes"] == 3800
    watcher.wait_for(DEV + "/status", lambda p: b'"reason":"rebooting"' in p, since=mark)
    hb = watcher.wait_json(DEV + "/status", heartbeat_pred(boot=hb0["boot"] + 1), since=mark,
                           timeout=20)
    assert hb["files"]["main.py"] == sha1
    assert "ext" in hb["features"] and "bundle" in hb["features"], hb["features"]
    assert (device.flash_dir / "main.py").read_bytes() == data
    assert device.boots == boots + 1
    assert not (device.flash_dir / ".ota.part").exists()


def test_legacy_trigger_into_new_subfolder(device, watcher):
    data = b"VALUE = 42\n" * 50
    hb0 = watcher.latest_json(DEV + "/status", heartbeat_pred())
    final, states, mark = push(watcher, data, "lib/util.py", mode="legacy")
    assert final["state"] == "rebooting" and final["token"] == "", final
    assert (device.flash_dir / "lib" / "util.py").read_bytes() == data
    hb = watcher.wait_json(DEV + "/status", heartbeat_pred(boot=hb0["boot"] + 1), since=mark,
                           timeout=20)
    assert hb["files"]["lib/util.py"] == hashlib.sha1(data).hexdigest()


@pytest.mark.parametrize("serve, reason", [
    (lambda d: d[:100] + b"X" + d[101:], "hash mismatch"),
    (lambda d: d[:-500], "transfer broken"),
    (lambda d: d + b"# extra\n", "size mismatch"),
])
def test_bad_stream_fails_and_keeps_old_file(device, watcher, serve, reason):
    data = padded_main_py(2500)
    before = (device.flash_dir / "main.py").read_bytes()
    boots = device.boots
    final, states, mark = push(watcher, data, "main.py", serve=serve(data))
    assert final["state"] == "failed" and final["reason"] == reason, final
    assert final["file"] == "main.py"
    assert "rebooting" not in states
    assert (device.flash_dir / "main.py").read_bytes() == before
    assert not (device.flash_dir / ".ota.part").exists()
    online_after(watcher, mark)
    assert device.boots == boots


def test_nobody_listening_is_connect_failed(device, watcher):
    data = b"print('never')\n"
    tx = OneShotSender(data)  # bound but never accepting: close it to free the port
    trig = tx.trigger("never.py")
    tx.close()
    mark = watcher.mark()
    watcher.publish(DEV + "/OTA", trig)
    final = watcher.wait_json(DEV + "/ota/status", tx.outcome, since=mark)
    assert final["reason"] == "connect failed", final
    assert not (device.flash_dir / "never.py").exists()


SHA = "a" * 40
TOK = "0123456789abcdef0123456789abcdef"
MALFORMED = [
    "127.0.0.1|9|main.py",
    "127.0.0.1|9|main.py|%s|10" % SHA,
    "127.0.0.1|0|main.py|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|main.py|%s|10|%s" % ("A" * 40, TOK),
    "127.0.0.1|9|main.py|%s|-1|%s" % (SHA, TOK),
    "127.0.0.1|9|../x|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|/etc/passwd|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|a/b/c|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|settings.json|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|.ota.part|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|ma\tin.py|%s|10|%s" % (SHA, TOK),
    "127.0.0.1|9|m\u00e4in.py|%s|10|%s" % (SHA, TOK),
    "",
]


def test_malformed_triggers_change_nothing(device, watcher):
    before = {k: v for k, v in flash_listing(device.flash_dir).items()
              if not k.startswith(".")}
    boots = device.boots
    for trig in MALFORMED:
        mark = watcher.mark()
        watcher.publish(DEV + "/OTA", trig.encode())
        st = watcher.wait_json(DEV + "/ota/status", lambda d: d["state"] == "failed",
                               since=mark)
        assert st["reason"] == "malformed", (trig, st)
        if TOK in trig:
            assert st["token"] == TOK, (trig, st)
    online_after(watcher, watcher.mark())
    after = {k: v for k, v in flash_listing(device.flash_dir).items()
             if not k.startswith(".")}
    assert after == before
    assert device.boots == boots
    assert not Path(device.flash_dir, ".ota.part").exists()
