"""Faults that once bricked a board or stopped every later push (issue 9), on the real firmware:
a file and a folder with the same name, a plugin that fails to load, a journal the safe-boot
code cannot carry out, and deletes over the air (a full flash's way out).

Each is refused or rolled back with a reason a person understands, and the device stays
reachable and takes the next push. Pushes go through the server's own services; what the
device itself refuses is tried with a hand-made sender that skips the server's checks.
"""
import hashlib
import io
import json

import pytest

from tests.support.app import finished, registered
from tests.support.devices import MqttWatcher, OneShotSender
from tests.support.waiting import wait_until
from webapp.db import get_db
from webapp.push.service import PushRejected

pytestmark = pytest.mark.integration

FAST = {"confirm_after": 1, "wdt_ms": 1500}
BAD_MAIN = b"import runtime\nraise RuntimeError('bad release')\n"


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def stored(app, data, name):
    with app.app_context():
        return app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)


def push(app, device, files=(), delete=(), force=False):
    """files: [(name on device, bytes)]; returns the push id (PushRejected if refused)."""
    fs = [stored(app, data, name) for name, data in files]
    with app.app_context():
        svc = app.extensions["dcc_ota"].services.pushes
        if len(fs) == 1:
            return svc.create(get_db(), device, fs[:1], files[0][0], force, delete)
        return svc.create(get_db(), device, fs, None, force, delete)


def done(app, device, files=(), delete=(), force=False):
    row = finished(app, push(app, device, files, delete, force))
    assert (row["state"], row["reason"]) == ("done", None), row
    return row


def rejected_by_server(app, device, files=(), delete=(), force=False):
    with pytest.raises(PushRejected) as info:
        push(app, device, files, delete, force)
    return str(info.value)


def rejected_by_device(mosquitto, name, manifest_lines, stream=b"", extra=""):
    """A bundle straight to the device; its failed status {reason, detail}."""
    head = "".join(manifest_lines).encode()
    n = len(manifest_lines)
    with MqttWatcher(mosquitto.port) as mq, OneShotSender(head, serve=head + stream) as tx:
        mq.publish(name + "/OTA", tx.trigger("bundle", extra="|bundle=%d%s" % (n, extra)))
        st = mq.wait_json(name + "/ota/status", tx.outcome, timeout=20)
    assert st["state"] == "failed", st
    return st["reason"], st["detail"]


def ota_left(dev):
    """What an update left in .ota/ (files and folders), the signature counter aside."""
    ota = dev.flash_dir / ".ota"
    return sorted(str(p.relative_to(ota)) for p in ota.rglob("*")
                  if p.name != "counter" and not (p.is_dir() and p.name in ("new", "old")))


@pytest.fixture
def device(server, devices, unique):
    name = unique("names")
    dev = devices(name, settings=FAST)
    registered(server, name, lambda d: d.online and "rm" in d.features)
    return name, dev


def test_a_folder_under_a_name_that_is_a_file_is_refused_and_later_pushes_work(
        server, device, mosquitto):
    name, dev = device
    a, b = b"A = 1\n", b"B = 2\n"
    done(server, name, [("tools", a)])
    registered(server, name, lambda d: d.files.get("tools") == sha1(a))

    why = rejected_by_server(server, name, [("tools/helper.py", b)])
    assert why == "tools is a file on the device"
    # a sender that skips the server's check meets the device's own, before a byte is written
    assert rejected_by_device(mosquitto, name, ["%s %d tools/helper.py\n" % (sha1(b), len(b))],
                              b) == ("rejected", "tools is a file on the device")
    assert (dev.flash_dir / "tools").read_bytes() == a
    assert ota_left(dev) == []

    done(server, name, [("helper.py", b)])  # the device still takes pushes
    assert (dev.flash_dir / "helper.py").read_bytes() == b


def test_a_file_under_a_name_that_is_a_folder_is_refused_and_a_rollback_stays_whole(
        server, device, mosquitto):
    name, dev = device
    b = b"B = 2\n"
    old_main = (dev.flash_dir / "main.py").read_bytes()
    done(server, name, [("pkg/mod.py", b)])

    assert rejected_by_server(server, name, [("pkg", b)]) == "pkg is a folder on the device"
    assert rejected_by_device(mosquitto, name, ["%s %d pkg\n" % (sha1(b), len(b))], b) == \
        ("rejected", "pkg is a folder on the device")
    # a main.py that raises rolls back to the old one: a file, not a folder from the backups
    row = finished(server, push(server, name, [("main.py", BAD_MAIN)]))
    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert "RuntimeError: bad release" in row["detail"]
    assert (dev.flash_dir / "main.py").read_bytes() == old_main
    assert (dev.flash_dir / "pkg" / "mod.py").read_bytes() == b
    assert ota_left(dev) == []
    registered(server, name, lambda d: d.online and d.files.get("main.py") == sha1(old_main))
    done(server, name, [("notes.txt", b"landing\n")])


def test_a_file_and_a_folder_of_one_name_in_one_push_are_refused(server, device, mosquitto):
    name, dev = device
    x, y = b"x\n", b"y\n"
    why = rejected_by_server(server, name, [("lib", x), ("lib/y.py", y)])
    assert why == "lib and lib/y.py cannot both be: one is a file, the other a folder"
    assert rejected_by_device(mosquitto, name, ["%s %d lib\n" % (sha1(x), len(x)),
                                                "%s %d lib/y.py\n" % (sha1(y), len(y))],
                              x + y) == ("malformed", "lib and lib/y.py: a file and a folder")
    assert not (dev.flash_dir / "lib").exists()


def test_a_plugin_that_fails_to_load_on_probation_rolls_back(server, device):
    name, dev = device
    old = (dev.flash_dir / "lamp.py").read_bytes()
    bad = b"raise RuntimeError('no relay on this board')\n" + old

    row = finished(server, push(server, name, [("lamp.py", bad)]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert row["detail"] == "plugin lamp: RuntimeError: no relay on this board", row
    assert (dev.flash_dir / "lamp.py").read_bytes() == old
    d = registered(server, name, lambda d: d.online and d.files.get("lamp.py") == sha1(old))
    assert "lamp" in d.plugins  # the old lamp is back and loaded


INTO_A_FILE = {"state": "commit", "token": "t" * 32, "files": ["main.py", "boot_log/x.py"],
               "had": [1, 0], "boots": 0}
# Journals that the safe-boot code cannot carry out as written; each must still boot a whole
# set. (name, journal text, files put in .ota/new, the push's outcome on ota/status or None,
# a step to cut the power at once)
BROKEN_JOURNALS = [
    ("rename into a file", INTO_A_FILE, {"0": BAD_MAIN, "1": b"X = 1\n"}, "rolled_back", None),
    ("rename into a file, cut in the rollback", INTO_A_FILE, {"0": BAD_MAIN, "1": b"X = 1\n"},
     "rolled_back", "restore0"),
    ("unknown state", {"state": "half-done", "token": "t" * 32, "files": ["main.py"],
                       "had": [1], "boots": 0}, {}, "rolled_back", None),
    ("missing fields", {"state": "commit"}, {}, "rolled_back", None),
    ("not an object", [1, 2, 3], {}, None, None),
    ("not JSON", "{\"state\": \"comm", {}, None, None),
]


@pytest.mark.parametrize("case", BROKEN_JOURNALS, ids=[c[0] for c in BROKEN_JOURNALS])
def test_a_journal_the_safe_boot_code_cannot_carry_out_still_boots_the_old_set(
        case, mosquitto, watcher, devices, unique):
    _, journal, new, outcome, cut = case
    name = unique("journal")
    dev = devices(name, settings=FAST)
    watcher.wait_json(name + "/status", lambda d: d.get("online"), timeout=20)
    old = {n: (dev.flash_dir / n).read_bytes() for n in ("main.py", "boot.py", "lamp.py")}
    dev.stop()
    (dev.flash_dir / "boot_log").write_bytes(b"a file, where the journal wants a folder\n")
    ota = dev.flash_dir / ".ota"
    (ota / "new").mkdir(parents=True, exist_ok=True)
    for i, data in new.items():
        (ota / "new" / i).write_bytes(data)
    (ota / "journal.json").write_text(journal if isinstance(journal, str) else json.dumps(journal))
    dev.kill_at = cut
    mark = watcher.mark()

    dev.start()
    if cut:
        wait_until(lambda: dev.cuts == [cut], 30, what="the power cut at " + cut)

    if outcome:
        st = watcher.wait_json(name + "/ota/status", lambda d: d.get("state") in (
            "confirmed", "rolled_back"), since=mark, timeout=30)
        assert st["state"] == outcome, st
        assert st["reason"].startswith(("safeboot: ", "unknown journal state")), st
    hb = watcher.wait_json(name + "/status", lambda d: d.get("online"), since=mark, timeout=30)
    assert "probation" not in hb
    assert {n: (dev.flash_dir / n).read_bytes() for n in old} == old
    assert not (dev.flash_dir / "boot_log" / "x.py").exists()
    assert ota_left(dev) == []
    assert "Traceback" not in dev.log_text()


def test_a_stale_folder_in_the_backup_slot_is_cleared_at_boot(server, device):
    """The old firmware could move a folder into .ota/old/0 and never clear it; the next
    rollback then restored that folder under a file's name. A boot without an update empties
    the slot, folders included, and the rollback after it stays whole."""
    name, dev = device
    old_main = (dev.flash_dir / "main.py").read_bytes()
    dev.stop()
    (dev.flash_dir / ".ota" / "old" / "0").mkdir(parents=True)
    (dev.flash_dir / ".ota" / "old" / "0" / "mod.py").write_bytes(b"M = 1\n")
    dev.start()
    registered(server, name, lambda d: d.online and d.boot == 2)
    assert ota_left(dev) == []

    row = finished(server, push(server, name, [("main.py", BAD_MAIN)]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert (dev.flash_dir / "main.py").read_bytes() == old_main


def test_a_delete_goes_through_the_journal_and_removes_an_emptied_folder(server, device):
    name, dev = device
    notes, mod = b"landing\n", b"M = 1\n"
    done(server, name, [("notes.txt", notes), ("pkg/mod.py", mod)])

    row = done(server, name, delete=["notes.txt", "pkg/mod.py"])

    assert [f["target"] for f in row["files"] if f["delete"]] == ["notes.txt", "pkg/mod.py"]
    assert not (dev.flash_dir / "notes.txt").exists()
    assert not (dev.flash_dir / "pkg").exists()
    assert ota_left(dev) == []
    registered(server, name, lambda d: "notes.txt" not in d.files and "pkg/mod.py" not in d.files)
    # a file may now take the folder's name
    done(server, name, [("pkg", b"now a file\n")])


def test_a_delete_and_a_bad_main_py_in_one_update_roll_back_together(server, device):
    name, dev = device
    notes = b"landing\n"
    done(server, name, [("notes.txt", notes)])
    old_main = (dev.flash_dir / "main.py").read_bytes()

    row = finished(server, push(server, name, [("main.py", BAD_MAIN)], delete=["notes.txt"]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert (dev.flash_dir / "notes.txt").read_bytes() == notes
    assert (dev.flash_dir / "main.py").read_bytes() == old_main
    assert ota_left(dev) == []
    registered(server, name, lambda d: d.files.get("notes.txt") == sha1(notes))


def test_deleting_the_runtime_or_settings_needs_force_or_is_refused(server, device, mosquitto):
    name, dev = device
    why = rejected_by_server(server, name, delete=["main.py"])
    assert "main.py is part of the device's runtime" in why and "force" in why
    assert "boot.py is the safe-boot code" in rejected_by_server(server, name, delete=["boot.py"])
    assert "never deleted" in rejected_by_server(server, name, delete=["settings.json"], force=True)
    assert rejected_by_server(server, name, delete=["gone.txt"]) == "gone.txt is not on the device"
    # the device's own rule, for a sender that skips the server's
    assert rejected_by_device(mosquitto, name, ["- - runtime.py\n"]) == (
        "rejected", "runtime.py is the device's runtime: deleting it needs force=1")
    assert rejected_by_device(mosquitto, name, ["- - settings.json\n"]) == (
        "rejected", "settings.json needs force=1")
    assert (dev.flash_dir / "runtime.py").exists() and (dev.flash_dir / "main.py").exists()


FLASH_KB = 192


def test_a_delete_frees_a_flash_filled_to_zero_free_blocks(server, devices, unique):
    """A LittleFS image (4 KB blocks) filled by a data logger until not one block is free: no
    push of any size fits, a delete does, and then a push into the room it made."""
    name = unique("full")
    dev = devices(name, settings=FAST, flash_kb=FLASH_KB)
    registered(server, name, lambda d: d.online and "rm" in d.features)
    done(server, name, [("notes.txt", b"landing\n")])  # the .ota folders exist from now on
    dev.stop()
    dev.flash.fill("data.log")
    assert dev.flash.free() == 0
    logged = len(dev.read_file("data.log"))  # a dozen blocks
    old_main = dev.read_file("main.py")
    dev.start()
    registered(server, name, lambda d: d.online and "data.log" in d.files)
    row = finished(server, push(server, name, [("tiny.txt", b"")]))
    assert (row["state"], row["reason"]) == ("failed", "no space"), row

    done(server, name, delete=["data.log"])

    assert "data.log" not in dev.listing()
    free = dev.flash.free()
    assert free > 4 * 4096, (free, logged)  # the backup is gone too: its blocks are free
    # a file into that room: the device wants a block per file and two for the journal spare
    notes = b"night lamp on the landing\n" * ((free - 4 * 4096) // 26)
    done(server, name, [("notes2.txt", notes)])
    assert dev.read_file("notes2.txt") == notes
    assert dev.read_file("main.py") == old_main


def test_new_files_that_never_reach_the_broker_roll_back(server, device):
    """Healthy means connected: an MQTT client that can no longer connect is rolled back
    after 10 x confirm_after seconds on probation (10 s here, 300 s by default)."""
    name, dev = device
    old = (dev.flash_dir / "mqtt_client.py").read_bytes()
    bad = old.replace(b"    def connect(self, sock=None):\n",
                      b"    def connect(self, sock=None):\n        raise OSError(111)\n", 1)
    assert bad != old

    row = finished(server, push(server, name, [("mqtt_client.py", bad)]), timeout=90)

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert row["detail"].startswith("no MQTT link in 10 s: OSError(111"), row
    assert (dev.flash_dir / "mqtt_client.py").read_bytes() == old
    registered(server, name, lambda d: d.online and d.files.get("mqtt_client.py") == sha1(old))


def test_a_push_queued_behind_another_is_checked_again_when_its_turn_comes(server, device):
    """Two deletes of one file, the second queued behind the first: the second is refused
    with the reason once the first has run, instead of rebooting the device for nothing."""
    name, dev = device
    done(server, name, [("notes.txt", b"landing\n")])
    registered(server, name, lambda d: "notes.txt" in d.files)
    first = push(server, name, delete=["notes.txt"])
    second = push(server, name, delete=["notes.txt"])

    assert (finished(server, first)["state"]) == "done"
    row = finished(server, second)

    assert (row["state"], row["reason"], row["detail"]) == (
        "failed", "rejected", "notes.txt is not on the device"), row
    assert dev.boots == 3  # the first push's reboot, no other


def test_a_push_to_several_devices_is_refused_for_all_when_one_cannot_take_it(server, device):
    """All or none: the device that could take it gets no push either, and its board does not
    reboot for a request that answered 400."""
    name, dev = device
    done(server, name, [("notes.txt", b"landing\n")])
    with server.app_context():
        svc = server.extensions["dcc_ota"].services.pushes
        before = get_db().execute("SELECT COUNT(*) FROM pushes").fetchone()[0]
        with pytest.raises(PushRejected, match="ghost-lamp was never heard from"):
            svc.create_many(get_db(), [name, "ghost-lamp"], [], None, False, ["notes.txt"])
        assert get_db().execute("SELECT COUNT(*) FROM pushes").fetchone()[0] == before
    assert (dev.flash_dir / "notes.txt").exists() and dev.boots == 2


def test_a_refusal_the_device_sends_as_it_breaks_off_is_its_reason_and_not_retried(
        server, device):
    """The device closes the transfer and then says why: the push ends with the device's
    reason at its first attempt, not as a `transfer broken` tried again (found by trying)."""
    name, dev = device
    (dev.flash_dir / "pkg").mkdir()  # behind the server's back: no heartbeat lists it
    (dev.flash_dir / "pkg" / "x.py").write_bytes(b"X = 1\n")

    row = finished(server, push(server, name, [("pkg", b"P = 1\n")]))

    assert (row["state"], row["reason"], row["detail"]) == (
        "failed", "rejected", "pkg is a folder on the device"), row
    assert row["attempt"] == 1
    assert "retrying" not in [e["state"] for e in row["events"]]
