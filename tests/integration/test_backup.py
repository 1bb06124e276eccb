"""Issue 12: `ota backup` writes one archive (SQLite's online backup of the database, and the
file store); `ota restore` puts both back into an empty instance, where every device, file and
push is found again. Real CLI processes on a real database; hostile archives are refused
before anything is written."""
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.app import push_row
from webapp import create_app
from webapp import keys
from webapp.db import LATEST, get_db
from webapp.devices import Heartbeat
from webapp.manifest import Item
from webapp.push import store
from webapp.push.states import State

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")


def instance(tmp_path, name):
    return {"OTA_DATABASE": str(tmp_path / name / "dcc-ota.sqlite"),
            "OTA_FILE_STORE": str(tmp_path / name / "files")}


def ota(config, *args):
    env = dict(os.environ, **config)
    return subprocess.run([FLASK, "--app", "wsgi", "ota", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def seeded(config):
    """An instance with a device, two files (one deleted) and a finished push."""
    (Path(config["OTA_DATABASE"]).parent).mkdir(parents=True, exist_ok=True)
    app = create_app(dict(config))
    with app.app_context():
        db = get_db()
        ext = app.extensions["dcc_ota"]
        ext.registry.record(db, "lamp-hall", Heartbeat(online=True, fw="0.1.0", boot=3,
                                                        features=("ext", "bundle"),
                                                        files={"main.py": "a" * 40}))
        kept = ext.store.save(db, io.BytesIO(b"KEPT = 1\n" * 100), "kept.py")
        gone = ext.store.save(db, io.BytesIO(b"GONE = 1\n"), "gone.py")
        push_id = store.insert(db, "lamp-hall", [Item(kept, "kept.py")], False, None)
        store.step(db, push_id, State.TRIGGER_SENT, "bundle form")
        store.finish(db, push_id, State.DONE, None, "confirmed")
        ext.store.delete(db, gone.sha256)
    return app, kept, push_id


def test_a_backup_restored_into_an_empty_instance_has_every_device_file_and_push(tmp_path):
    old = instance(tmp_path, "old")
    app, kept, push_id = seeded(old)
    archive = tmp_path / "backup.tar.gz"

    made = ota(old, "backup", str(archive))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().endswith("the database (schema %d) and 1 files" % LATEST)
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["backup.json", "dcc-ota.sqlite", "files/" + kept.sha256]

    new = instance(tmp_path, "new")
    back = ota(new, "restore", str(archive))
    assert back.returncode == 0, back.stderr

    restored = create_app(dict(new))
    with restored.app_context():
        db = get_db()
        ext = restored.extensions["dcc_ota"]
        device = ext.registry.get(db, "lamp-hall")
        assert (device.boot, device.files) == (3, {"main.py": "a" * 40})
        assert [f.name for f in ext.store.all(db)] == ["kept.py"]
        with open(ext.store.path(kept.sha256), "rb") as f:
            assert f.read() == b"KEPT = 1\n" * 100
    assert push_row(restored, push_id) == push_row(app, push_id)


def a_backup(tmp_path):
    """The archive of a seeded instance."""
    old = instance(tmp_path, "old")
    seeded(old)
    archive = tmp_path / "backup.tar.gz"
    assert ota(old, "backup", str(archive)).returncode == 0
    return archive


def test_restore_will_not_replace_a_server_with_data_without_force(tmp_path):
    archive = a_backup(tmp_path)
    busy = instance(tmp_path, "busy")
    seeded(busy)

    refused = ota(busy, "restore", str(archive))
    assert refused.returncode == 2
    assert "already holds data (devices, keys, users, files or pushes): restore with --force" \
        in refused.stderr
    assert ota(busy, "restore", str(archive), "--force").returncode == 0


@pytest.mark.parametrize("member, data, message", [
    ("../escape.py", b"x", "'../escape.py', which is not part of a backup"),
    ("files/" + "0" * 64, b"not those bytes", "does not hold the bytes its name says"),
    ("dcc-ota.sqlite", b"not a database", "database cannot be read"),
])
def test_a_hostile_or_damaged_archive_is_refused_and_nothing_is_written(tmp_path, member, data,
                                                                        message):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, body in (("backup.json", json.dumps({"format": 1, "files": 0,
                                                       "created_at": 0, "schema": 3}).encode()),
                           (member, data)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    target = instance(tmp_path, "target")

    refused = ota(target, "restore", str(archive))

    assert refused.returncode == 1
    assert message in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "escape.py").exists()
    assert [p.name for p in Path(target["OTA_FILE_STORE"]).iterdir()] == []


def test_a_server_with_only_a_device_key_is_not_replaced_without_force(tmp_path):
    """Found by trying: a key (or a user, a token) alone is data a restore must not drop."""
    archive = a_backup(tmp_path)
    target = instance(tmp_path, "keyed")
    assert ota(target, "device-add", "precious").returncode == 0

    refused = ota(target, "restore", str(archive))

    assert refused.returncode == 2, refused.stderr
    app = create_app(dict(target))
    with app.app_context():
        assert keys.get(get_db(), "precious") is not None


def fake_archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, body in [("backup.json", json.dumps(
                {"format": 1, "files": 0, "created_at": 0, "schema": 3}).encode())] + members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def foreign_database(tmp_path, version=0, table="CREATE TABLE notes (x)"):
    path = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(table)
    conn.execute("PRAGMA user_version = %d" % version)
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("make, message", [
    (lambda tmp: foreign_database(tmp), "is not DCC-OTA's: it has no device_keys, devices"),
    (lambda tmp: foreign_database(tmp, version=99), "schema 99, made by a newer DCC-OTA"),
])
def test_a_database_that_is_not_ours_is_refused_and_the_server_keeps_working(
        tmp_path, make, message):
    archive = tmp_path / "foreign.tar.gz"
    fake_archive(archive, [("dcc-ota.sqlite", make(tmp_path))])
    target = instance(tmp_path, "target")

    refused = ota(target, "restore", str(archive))

    assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert ota(target, "devices", "--json").returncode == 0  # the data folder still works


def test_a_member_larger_than_any_upload_is_refused_before_a_byte_is_unpacked(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # 64 MB of zeros: a few KB packed
        info = tarfile.TarInfo("files/" + "0" * 64)
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    target = dict(instance(tmp_path, "target"), OTA_MAX_UPLOAD=str(1 << 20))

    refused = ota(target, "restore", str(archive))

    assert refused.returncode == 1
    assert "is 67108864 bytes, more than any upload (OTA_MAX_UPLOAD, 1048576)" in refused.stderr
    assert list(Path(target["OTA_FILE_STORE"]).iterdir()) == []


def test_a_truncated_archive_says_so(tmp_path):
    archive = a_backup(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-200])

    refused = ota(instance(tmp_path, "target"), "restore", str(cut))

    assert refused.returncode == 1
    assert refused.stderr.startswith("restore failed: %s cannot be read as a DCC-OTA backup" % cut)
