"""A full flash: pushes to devices whose flash is a real LittleFS image (SimDevice(flash_kb=N)).

The image is mounted with vfs.VfsLfs2 by the simulator's boot script, so os.statvfs() and
ENOSPC are LittleFS's own; files are read back from the image through MicroPython.
"""
import hashlib
import io

import pytest

from tests.support.app import finished, registered
from tests.support.devices import MqttWatcher, OneShotSender
from webapp.db import get_db

pytestmark = pytest.mark.integration

# 4 KB blocks as on an ESP8266/ESP32: 17 board files take 23 of 48 blocks, and the .ota
# folders of the first push 6 more (a metadata pair each).
FLASH_KB = 192
FAST = {"confirm_after": 1, "wdt_ms": 1500}
OLD = ("main.py", "lamp.py", "ota_receiver.py", "settings.json")


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def push(app, device, name, data):
    with app.app_context():
        f = app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)
        return app.extensions["dcc_ota"].services.pushes.create(get_db(), device, [f], name)



def leftovers(dev):
    """Temporary files of an update: .ota.part, .ota/new/*, a journal."""
    return [n for n in dev.listing()
            if n == ".ota.part" or n.startswith(".ota/new/") or n.startswith(".ota/journal")]


@pytest.fixture
def small(server, devices, unique):
    """A running bundle device on a 192 KB LittleFS image; (name, device, old files)."""
    name = unique("full")
    dev = devices(name, settings=FAST, flash_kb=FLASH_KB)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    assert dev.flash is not None and (dev.flash_dir / "flash.img").exists()
    assert not (dev.flash_dir / "main.py").exists()  # the firmware lives in the image
    return name, dev, {n: dev.read_file(n) for n in OLD}


def test_a_push_bigger_than_the_free_space_fails_before_writing(server, small):
    name, dev, old = small
    free = dev.flash.free()
    big = b"0123456789abcdef" * ((free + 8192) // 16)

    row = finished(server, push(server, name, "big.bin", big))

    assert (row["state"], row["reason"]) == ("failed", "no space"), row
    assert "need %d bytes" % len(big) in row["detail"], row
    assert {n: dev.read_file(n) for n in OLD} == old
    assert "big.bin" not in dev.listing()
    assert leftovers(dev) == []
    assert dev.boots == 1
    # still online, and a push that fits goes through
    registered(server, name, lambda d: d.online)
    notes = b"night lamp on the landing\n" * 20
    row = finished(server, push(server, name, "notes.txt", notes))
    assert (row["state"], row["reason"]) == ("done", None), row
    assert dev.read_file("notes.txt") == notes
    assert dev.read_file("main.py") == old["main.py"]
    registered(server, name, lambda d: d.files.get("notes.txt") == sha1(notes))


def test_a_legacy_push_of_unknown_size_runs_out_of_space_while_writing(small, mosquitto):
    """A legacy trigger has no size: no pre-check, LittleFS's ENOSPC comes mid-file."""
    name, dev, old = small
    free = dev.flash.free()
    big = bytes(range(256)) * ((free + 16384) // 256)
    with MqttWatcher(mosquitto.port) as mq, OneShotSender(big, mode="legacy") as tx:
        mq.publish(name + "/OTA", tx.trigger("big.bin"))
        st = mq.wait_json(name + "/ota/status", tx.outcome, timeout=30)

    assert (st["state"], st["reason"]) == ("failed", "no space"), st
    assert st["detail"] in ("28", "[Errno 28] ENOSPC"), st  # errno ENOSPC
    assert {n: dev.read_file(n) for n in OLD} == old
    assert "big.bin" not in dev.listing()
    assert leftovers(dev) == []
    assert dev.flash.free() == free  # the partial file's blocks are back
    assert dev.boots == 1


def test_a_bundle_that_passed_the_check_runs_out_of_space_mid_write(small, mosquitto):
    """The free space shrinks after the pre-check: another writer on the board fills the
    flash once the first file is down (shims/simupdate.py, .sim_fill), so the second one
    meets LittleFS's ENOSPC."""
    name, dev, old = small
    files = [("main.py", old["main.py"] + b"# v2\n"), ("extra.py", b"Z = 3\n" * 700)]
    head = "".join("%s %d %s\n" % (sha1(d), len(d), n) for n, d in files).encode()
    (dev.flash_dir / ".sim_fill").write_text("download")
    with MqttWatcher(mosquitto.port) as mq, \
            OneShotSender(head, serve=head + b"".join(d for _, d in files)) as tx:
        mq.publish(name + "/OTA", tx.trigger("bundle", extra="|bundle=2"))
        st = mq.wait_json(name + "/ota/status", tx.outcome, timeout=30)

    assert not (dev.flash_dir / ".sim_fill").exists(), "the filler never ran"
    assert (st["state"], st["reason"]) == ("failed", "no space"), st
    assert st["detail"] in ("28", "[Errno 28] ENOSPC"), st  # LittleFS, not the pre-check
    assert {n: dev.read_file(n) for n in OLD} == old
    names = dev.listing()
    assert "extra.py" not in names and ".sim_fill.bin" in names
    assert leftovers(dev) == []
    assert dev.boots == 1
