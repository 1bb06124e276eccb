"""A push's names before any device sees them (webapp/manifest.py): deletes, the runtime,
files and folders of one name, and the manifest lines; and the database upgrade that lets a
push hold deletes."""
import sqlite3
from types import SimpleNamespace

import pytest

from webapp.db import connect, init_db
from webapp.manifest import (BadPayload, Item, check_fit, check_items, manifest,
                             runtime_files)

F = SimpleNamespace(sha1="a" * 40, size=5, name="x.py", sha256="b" * 64)
DEVICE = {"main.py": "1" * 40, "tools": "2" * 40, "pkg/mod.py": "3" * 40, "notes.txt": "4" * 40}


def items(*names, delete=()):
    return [Item(F, n) for n in names] + [Item(None, n) for n in delete]


def test_the_manifest_lists_writes_and_deletes_in_stream_order():
    assert manifest(items("main.py", delete=["old.txt"])) == (
        b"%s 5 main.py\n- - old.txt\n" % (b"a" * 40))


def test_the_runtime_is_every_board_file_as_source_or_precompiled():
    names = runtime_files()
    for name in ("main.py", "runtime.py", "device.py", "mqtt_client.mpy", "boot.py"):
        assert name in names
    assert "notes.txt" not in names and "sim.py" not in names


@pytest.mark.parametrize("names, delete, force, why", [
    ((), ["main.py"], False, "main.py is part of the device's runtime"),
    ((), ["ota_receiver.mpy"], False, "ota_receiver.mpy is part of the device's runtime"),
    ((), ["boot.py"], False, "boot.py is the safe-boot code"),
    ((), ["settings.json"], True, "settings.json holds the device's settings and is never deleted"),
    (("lib",), ["lib/a.py"], False, "lib and lib/a.py cannot both be"),
    (("lib/a.py", "lib"), [], False, "lib and lib/a.py cannot both be"),
    ((), ["../x"], False, "an empty, '.' or '..' part"),
    (("a.py",), ["a.py"], False, "a.py is named twice"),
])
def test_a_push_that_cannot_be_is_refused_with_the_reason(names, delete, force, why):
    with pytest.raises(ValueError) as info:  # BadPayload, or names.BadName for a name
        check_items(items(*names, delete=delete), force)
    assert why in str(info.value)


def test_force_allows_deleting_the_runtime():
    assert check_items(items(delete=["main.py", "boot.py"]), force=True)


@pytest.mark.parametrize("names, delete, why", [
    (("tools/helper.py",), (), "tools is a file on the device"),
    (("pkg",), (), "pkg is a folder on the device"),
    ((), ("pkg",), "pkg is a folder on the device"),
    ((), ("gone.txt",), "gone.txt is not on the device"),
])
def test_names_are_checked_against_the_devices_files(names, delete, why):
    with pytest.raises(BadPayload) as info:
        check_fit(items(*names, delete=delete), DEVICE)
    assert str(info.value) == why


def test_names_that_fit_the_device_pass():
    fine = items("pkg/new.py", "tools2", "main.py", delete=["notes.txt", "pkg/mod.py"])
    assert check_fit(fine, DEVICE) == fine


def test_a_database_from_before_deletes_is_upgraded_and_keeps_its_pushes(tmp_path):
    path = str(tmp_path / "old.sqlite")
    # the tables as made before deletes: file_sha256 NOT NULL
    schema = ("CREATE TABLE files (sha256 TEXT PRIMARY KEY, sha1 TEXT NOT NULL, size INTEGER"
              " NOT NULL, name TEXT NOT NULL, uploaded_at REAL NOT NULL, deleted_at REAL);"
              "CREATE TABLE pushes (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL,"
              " file_sha256 TEXT NOT NULL REFERENCES files (sha256), target TEXT NOT NULL,"
              " nfiles INTEGER NOT NULL DEFAULT 1, force INTEGER NOT NULL DEFAULT 0,"
              " attempt INTEGER NOT NULL DEFAULT 1, form TEXT, token TEXT, state TEXT NOT NULL,"
              " reason TEXT, detail TEXT, bytes_sent INTEGER NOT NULL DEFAULT 0,"
              " total INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,"
              " finished_at REAL);"
              "CREATE TABLE push_files (push_id INTEGER NOT NULL REFERENCES pushes (id),"
              " position INTEGER NOT NULL, file_sha256 TEXT NOT NULL REFERENCES files (sha256),"
              " target TEXT NOT NULL, PRIMARY KEY (push_id, position));")
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.execute("INSERT INTO files VALUES ('s', 'h', 3, 'a.py', 1, NULL)")
    conn.execute("INSERT INTO pushes (device, file_sha256, target, state, total, created_at,"
                 " updated_at) VALUES ('lamp', 's', 'a.py', 'done', 3, 1, 1)")
    conn.execute("INSERT INTO push_files VALUES (1, 0, 's', 'a.py')")
    conn.commit()
    conn.close()

    init_db(path)

    db = connect(path)
    assert [tuple(r) for r in db.execute("SELECT device, target, state FROM pushes")] == [
        ("lamp", "a.py", "done")]
    db.execute("INSERT INTO pushes (device, file_sha256, target, state, total, created_at,"
               " updated_at) VALUES ('lamp', NULL, 'old.txt', 'queued', 0, 2, 2)")
    db.execute("INSERT INTO push_files VALUES (2, 0, NULL, 'old.txt')")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert {r["name"] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")} \
        >= {"pushes_device", "pushes_updated"}
    init_db(path)  # a second start changes nothing
    assert db.execute("SELECT count(*) FROM pushes").fetchone()[0] == 2
