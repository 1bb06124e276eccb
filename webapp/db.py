"""SQLite storage: one connection per app context, shared by requests and service threads."""
import sqlite3
from importlib import resources

import click
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


def init_db(path):
    schema = resources.files("webapp").joinpath("schema.sql").read_text()
    conn = connect(path)
    try:
        conn.executescript(schema)
        if _upgrade_nullable_files(conn):
            conn.executescript(schema)  # the indexes of the rebuilt tables
        _add_missing_columns(conn)
    finally:
        conn.close()


# Columns added since a table was first made: (table, column, its definition).
_ADDED_COLUMNS = [("users", "session_epoch", "INTEGER NOT NULL DEFAULT 0")]


def _add_missing_columns(conn):
    for table, column, definition in _ADDED_COLUMNS:
        if column not in [c["name"] for c in conn.execute("PRAGMA table_info(%s)" % table)]:
            conn.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, definition))


def _upgrade_nullable_files(conn):
    """A database made before deletes has `file_sha256 NOT NULL` in pushes and push_files:
    rebuild both with the column nullable (SQLite cannot drop a constraint in place; this is
    its documented rebuild: a new table, a copy, a rename). True if it did."""
    strict = [t for t in ("pushes", "push_files") if any(
        c["name"] == "file_sha256" and c["notnull"]
        for c in conn.execute("PRAGMA table_info(%s)" % t))]
    if not strict:
        return False
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table in strict:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()[0]
            new = sql.replace("file_sha256 TEXT NOT NULL", "file_sha256 TEXT", 1).replace(
                table, table + "_upgrade", 1)
            conn.execute(new)
            conn.execute("INSERT INTO %s_upgrade SELECT * FROM %s" % (table, table))
            conn.execute("DROP TABLE %s" % table)
            conn.execute("ALTER TABLE %s_upgrade RENAME TO %s" % (table, table))
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
    return True


@click.command("init-db")
def init_db_command():
    """Create the tables if they do not exist."""
    init_db(current_app.config["OTA_DATABASE"])
    click.echo("database ready: %s" % current_app.config["OTA_DATABASE"])


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
