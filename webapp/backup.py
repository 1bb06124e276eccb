"""One archive holds a server's state: a consistent copy of the database and the file store
(`flask --app wsgi ota backup FILE`, `ota restore FILE`).

The archive is a gzip'd tar with exactly these members, nothing else:

    backup.json          {"format": 1, "created_at": Unix time, "schema": user_version,
                          "files": number of stored files}
    dcc-ota.sqlite       the database, copied with SQLite's online backup (a live server
                         goes on writing meanwhile; the copy is one consistent moment)
    files/<sha256>       each stored file's bytes, named by their SHA-256

A restore checks every member's name and every file's hash before it writes anything, then
puts the database back with the same online backup, brings it to this version's schema
(db.init_db's migrations) and copies the files into the store.
"""
import hashlib
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
import time
import zlib
from importlib import resources

from .db import LATEST, connect, init_db

FORMAT = 1
DATABASE = "dcc-ota.sqlite"
MANIFEST = "backup.json"
_FILE = re.compile(r"files/([0-9a-f]{64})")
_CHUNK = 1 << 16


class BackupError(Exception):
    """The archive cannot be written or read back: the message says why, for the user."""


def write_backup(config, path):
    """Write the archive of the server configured by `config` to `path` (through a temporary
    beside it, renamed at the end: a failed backup leaves no half archive). Returns the
    manifest dict. BackupError on a path that cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(prefix=".dcc-backup-") as work:
        copy = os.path.join(work, DATABASE)
        _online_copy(config["OTA_DATABASE"], copy)
        conn = sqlite3.connect(copy)
        try:
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
            # the files the database knows, deleted ones excepted (their bytes are gone)
            digests = [r[0] for r in conn.execute(
                "SELECT sha256 FROM files WHERE deleted_at IS NULL ORDER BY sha256")]
        finally:
            conn.close()
        store = config["OTA_FILE_STORE"]
        present = [d for d in digests if os.path.exists(os.path.join(store, d))]
        manifest = {"format": FORMAT, "created_at": time.time(), "schema": schema,
                    "files": len(present)}
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".backup-", suffix=".tar.gz")
        except OSError as exc:
            raise BackupError("cannot write in %s: %s" % (folder, exc.strerror)) from None
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
                tar.add(copy, DATABASE)
                for digest in present:
                    tar.add(os.path.join(store, digest), "files/" + digest)
            os.replace(tmp, path)
        except OSError as exc:
            os.unlink(tmp)
            raise BackupError("cannot write %s: %s" % (path, exc.strerror or exc)) from None
    return manifest


def restore_backup(config, path, force=False):
    """Put the archive at `path` back as the server configured by `config`: its database and
    its files. Nothing is written until all of it has been checked; refused (BackupError):
    without `force`, a server that holds any data (devices, keys, users, files, pushes); an
    archive that is not one of ours, or has a member with any other name, a file larger than
    OTA_MAX_UPLOAD or whose bytes do not match its name, more than the disk has room for, or
    a database that is not DCC-OTA's or is newer than this version reads. Returns the
    archive's manifest dict."""
    if not force and _has_data(config["OTA_DATABASE"]):
        raise BackupError("%s already holds data (devices, keys, users, files or pushes): "
                          "restore with --force to replace it all (stop the server first)"
                          % config["OTA_DATABASE"])
    store = config["OTA_FILE_STORE"]
    os.makedirs(store, exist_ok=True)
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            members = tar.getmembers()  # reads the whole archive once: a truncated one fails
            _check_sizes(members, config["OTA_MAX_UPLOAD"], store)
            # unpacked beside the store: its files then go in by rename, on the same disk
            with tempfile.TemporaryDirectory(dir=store, prefix=".restore-") as work:
                manifest, files = _check(tar, members, work)
                copy = os.path.join(work, DATABASE)
                _check_database(copy)
                _online_copy(copy, config["OTA_DATABASE"])
                for digest in files:
                    os.replace(os.path.join(work, digest), os.path.join(store, digest))
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise BackupError("%s cannot be read as a DCC-OTA backup: %s" % (path, exc)) from None
    except sqlite3.Error as exc:
        raise BackupError("the archive's database cannot be used: %s" % exc) from None
    return manifest


def _check_sizes(members, max_file, store):
    """BackupError for a file over max_file bytes (OTA_MAX_UPLOAD: no upload is larger), or
    more bytes in all than the store's disk has free (kept 64 MB spare)."""
    for member in members:
        if member.name.startswith("files/") and member.size > max_file:
            raise BackupError("%s is %d bytes, more than any upload (OTA_MAX_UPLOAD, %d)"
                              % (member.name, member.size, max_file))
    st = os.statvfs(store)
    need, free = sum(m.size for m in members), st.f_bavail * st.f_frsize
    if need + (64 << 20) > free:
        raise BackupError("the archive unpacks to %d bytes and %s has %d free: make room first"
                          % (need, store, free))


def _check_database(path):
    """Check the archive's database (a copy) and bring it to this version's schema:
    BackupError for one that cannot be read or is damaged, one made by a newer DCC-OTA, or
    one without DCC-OTA's tables and columns."""
    try:
        conn = sqlite3.connect(path)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError("the archive's database cannot be read: %s" % exc) from None
    if not ok:
        raise BackupError("the archive's database is damaged (integrity check)")
    if version > LATEST:
        raise BackupError("the archive's database is schema %d, made by a newer DCC-OTA (this "
                          "one reads up to %d): restore it with that version" % (version, LATEST))
    missing = {"files", "devices", "pushes", "push_events", "users", "device_keys"} - tables
    if missing:
        raise BackupError("the archive's database is not DCC-OTA's: it has no %s"
                          % ", ".join(sorted(missing)))
    init_db(path)  # an older backup: brought to this schema, in the copy
    fresh = sqlite3.connect(":memory:")
    fresh.executescript(resources.files("webapp").joinpath("schema.sql").read_text())
    conn = sqlite3.connect(path)
    try:
        for (table,) in fresh.execute("SELECT name FROM sqlite_master WHERE type='table' AND"
                                      " name NOT LIKE 'sqlite_%'"):
            want = {c[1] for c in fresh.execute("PRAGMA table_info(%s)" % table)}
            have = {c[1] for c in conn.execute("PRAGMA table_info(%s)" % table)}
            if want - have:
                raise BackupError("the archive's database is not DCC-OTA's: %s has no %s"
                                  % (table, ", ".join(sorted(want - have))))
    finally:
        conn.close()
        fresh.close()


def _check(tar, members, work):
    """The manifest, and the files extracted into `work` after their hashes were checked;
    BackupError for anything else in the archive."""
    manifest, files, database = None, [], False
    for member in members:
        name = member.name
        if not member.isfile():
            raise BackupError("the archive holds %r, which is not a plain file" % name)
        found = _FILE.fullmatch(name)
        if name == MANIFEST:
            manifest = _manifest(tar.extractfile(member).read(1 << 16))
        elif name == DATABASE:
            _extract(tar, member, os.path.join(work, DATABASE))
            database = True
        elif found:
            digest = found.group(1)
            if _extract(tar, member, os.path.join(work, digest)) != digest:
                raise BackupError("%s does not hold the bytes its name says: the archive is "
                                  "damaged" % name)
            files.append(digest)
        else:
            raise BackupError("the archive holds %r, which is not part of a backup" % name)
    if manifest is None or not database:
        raise BackupError("the archive has no %s" % (MANIFEST if manifest is None else DATABASE))
    return manifest, files


def _manifest(data):
    try:
        manifest = json.loads(data)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("%s is not a backup of format %d" % (MANIFEST, FORMAT))
    return manifest


def _extract(tar, member, dest):
    """Copy a member's bytes to dest; returns their SHA-256."""
    digest = hashlib.sha256()
    src = tar.extractfile(member)
    with open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _online_copy(src, dest):
    """SQLite's online backup of the database at src into dest (replaced whole)."""
    source = connect(src)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _has_data(path):
    if not os.path.exists(path):
        return False
    conn = connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return any(conn.execute("SELECT 1 FROM %s LIMIT 1" % table).fetchone()
                   for table in ("devices", "device_keys", "users", "api_tokens", "files",
                                 "pushes") if table in tables)
    finally:
        conn.close()
