"""Whether this server is working, not only running: the checks behind /api/health.

"Running" is that the process answers at all; "working" is that it can do its job: the MQTT
broker is connected, the database answers (and would take a write), and the file store takes
a file with room for one more upload of the largest size (OTA_MAX_UPLOAD). systemd, a
monitor or a person reads the status code: 200 working, 503 not.
"""
import os
import tempfile

from . import extension
from .db import get_db


def check(config):
    """{"broker": bool, "database": bool, "file_store": bool} and the details behind them:
    {"broker_address", "broker_refused", "file_store_free", "errors": {check: message}}."""
    errors = {}
    services = extension.of().services
    broker = bool(services and services.bus.connected.is_set())
    if not broker:
        errors["broker"] = ("the MQTT services are not running in this process" if services is None
                            else services.bus.refused or "not connected to %s" % services.bus.where())
    database = _database(errors)
    if database and database_disk_full(config):
        database = False
        errors["database"] = "the database's disk is full"
    free = _free_bytes(config["OTA_FILE_STORE"])
    store = _store_writable(config["OTA_FILE_STORE"], errors)
    if store and free is not None and free < config["OTA_MAX_UPLOAD"]:
        store = False
        errors["file_store"] = "%d bytes free, less than one upload (OTA_MAX_UPLOAD, %d bytes)" % (
            free, config["OTA_MAX_UPLOAD"])
    return {"broker": broker, "database": database, "file_store": store,
            "broker_address": services.bus.where() if services else None,
            "broker_refused": services.bus.refused if services else None,
            "file_store_free": free, "errors": errors}


def _database(errors):
    # a connection, a read, and the write lock taken and given back: a database that answers
    # reads but cannot be written (locked for good, read-only) is not working
    try:
        db = get_db()
        db.execute("SELECT 1").fetchone()
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except Exception as exc:  # noqa: BLE001 (whatever it is, the check says so)
        errors["database"] = str(exc)
        return False


def database_disk_full(config):
    """Whether the database's disk has no room for even a few pages of its write-ahead log
    (64 KB): SQLite then fails every write, some as an I/O error."""
    free = _free_bytes(os.path.dirname(os.path.abspath(config["OTA_DATABASE"])))
    return free is not None and free < 64 * 1024


def _store_writable(root, errors):
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".health-") as f:
            f.write(b"x")  # a byte, not only a name: a full disk still takes an empty file
            f.flush()
        return True
    except OSError as exc:
        errors["file_store"] = "cannot write in %s: %s" % (root, exc.strerror or exc)
        return False


def _free_bytes(root):
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
