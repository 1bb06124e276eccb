"""SQLite storage: one connection per app context, shared by requests and service threads."""
import contextlib
import os
import sqlite3
from importlib import resources

from flask import current_app, g


def connect(path):
    # Requests, the MQTT thread, push threads and the CLI may all write at once: WAL lets
    # readers go on during a write, and the busy timeout makes writers queue instead of failing.
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def get_db():
    if "db" not in g:
        g.db = connect(current_app.config["OTA_DATABASE"])
    return g.db


def close_db(_exc=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


@contextlib.contextmanager
def transaction(conn):
    """One write transaction (BEGIN IMMEDIATE: it waits for other writers up front, instead
    of failing half-way): committed at the end of the block, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def init_db(path):
    """Make a new database with the latest tables, or bring an older one up to date: every
    migration numbered above its `PRAGMA user_version` runs, in order, then the version is
    set. Version 0 is a database from before numbered migrations."""
    schema = resources.files("webapp").joinpath("schema.sql").read_text()
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    new = not os.path.exists(path)
    conn = connect(path)
    if new:  # device keys and token hashes: readable by the server's user alone
        os.chmod(path, 0o600)
    try:
        fresh = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
                             ).fetchone()[0] == 0
        version = LATEST if fresh else conn.execute("PRAGMA user_version").fetchone()[0]
        for number, migrate in MIGRATIONS:
            if version < number:
                migrate(conn)
                conn.execute("PRAGMA user_version = %d" % number)
        # after the migrations: an index of the latest schema may name a column they add
        conn.executescript(schema)
        conn.execute("PRAGMA user_version = %d" % max(version, LATEST))
    finally:
        conn.close()


def _nullable_files(conn):
    """1: a push may delete files: `file_sha256` NULL in pushes and push_files. (A database
    made by a schema.sql between versions may have it already.)"""
    strict = [t for t in ("pushes", "push_files") if any(
        c["name"] == "file_sha256" and c["notnull"]
        for c in conn.execute("PRAGMA table_info(%s)" % t))]
    with _rebuilding(conn):
        for table in strict:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()[0]
            new = sql.replace("file_sha256 TEXT NOT NULL", "file_sha256 TEXT", 1).replace(
                table, table + "_upgrade", 1)
            conn.execute(new)
            conn.execute("INSERT INTO %s_upgrade SELECT * FROM %s" % (table, table))
            _swap(conn, table)


@contextlib.contextmanager
def _rebuilding(conn):
    """SQLite cannot drop a NOT NULL or add a CHECK in place; its documented way is a new
    table, a copy, a rename, with foreign keys off, in one transaction."""
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def _swap(conn, table):
    conn.execute("DROP TABLE %s" % table)
    conn.execute("ALTER TABLE %s_upgrade RENAME TO %s" % (table, table))


def _columns(conn, table):
    return [c["name"] for c in conn.execute("PRAGMA table_info(%s)" % table)]


def _session_epoch(conn):
    """2: logout ends every session: users.session_epoch."""
    if "session_epoch" not in _columns(conn, "users"):
        conn.execute("ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0")


def _owners_and_notes(conn):
    """3: one push per device across processes (pushes.owner, pushes.lease_until), a cancel
    that reaches the process running a push (pushes.cancel_request), a
    device's probation (devices.probation), and a timeline's notes apart from its states
    (push_events.note; `state` NULL for a note)."""
    for table, column, kind in (("pushes", "owner", "TEXT"), ("pushes", "lease_until", "REAL"),
                                ("pushes", "cancel_request", "TEXT"),
                                ("devices", "probation", "INTEGER NOT NULL DEFAULT 0")):
        if column not in _columns(conn, table):
            conn.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, kind))
    if "note" in _columns(conn, "push_events"):
        return
    notes = ("resumed", "retrying", "reconciling")  # the notes written before version 3
    with _rebuilding(conn):
        conn.execute("CREATE TABLE push_events_upgrade (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " push_id INTEGER NOT NULL REFERENCES pushes (id), at REAL NOT NULL,"
                     " state TEXT, detail TEXT, note TEXT,"
                     " CHECK ((state IS NULL) != (note IS NULL)))")
        conn.execute("INSERT INTO push_events_upgrade (id, push_id, at, state, detail, note)"
                     " SELECT id, push_id, at, CASE WHEN state IN (?,?,?) THEN NULL ELSE state"
                     " END, detail, CASE WHEN state IN (?,?,?) THEN state END FROM push_events",
                     notes + notes)
        _swap(conn, "push_events")


def _device_mpy(conn):
    """4: what MicroPython a device runs and the .mpy format it loads (devices.micropython,
    devices.mpy)."""
    for column, kind in (("micropython", "TEXT"), ("mpy", "INTEGER")):
        if column not in _columns(conn, "devices"):
            conn.execute("ALTER TABLE devices ADD COLUMN %s %s" % (column, kind))


def _last_ota_status(conn):
    """5: the last OTA status each device sent (devices.ota_status)."""
    if "ota_status" not in _columns(conn, "devices"):
        conn.execute("ALTER TABLE devices ADD COLUMN ota_status TEXT")


def _forgotten_devices(conn):
    """6: devices forgotten by a person (forgotten_devices), for the live list's cursor."""
    conn.execute("CREATE TABLE IF NOT EXISTS forgotten_devices (name TEXT PRIMARY KEY,"
                 " at REAL NOT NULL)")


def _fleets(conn):
    """7: tags, releases and rollouts (device_tags, releases, release_files, rollouts,
    rollout_devices): new tables only, which schema.sql makes after the migrations."""


# (number, function): applied in order to a database whose user_version is below the number.
# Add one at the end for every change of schema.sql that an existing database must get.
MIGRATIONS = [(1, _nullable_files), (2, _session_epoch), (3, _owners_and_notes),
              (4, _device_mpy), (5, _last_ota_status), (6, _forgotten_devices),
              (7, _fleets)]
LATEST = MIGRATIONS[-1][0]


def init_app(app):
    app.teardown_appcontext(close_db)
