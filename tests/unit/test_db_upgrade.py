"""Schema upgrades (webapp/db.py, numbered migrations): a database made by the schema this
project shipped before migrations (tests/fixtures/schema_v0.sql, as of 2026-11-27), with rows
in every table, is brought up to date at start, and every row reads back as it was."""
import sqlite3
from pathlib import Path

from webapp import create_app
from webapp.db import LATEST, connect, init_db

V0 = (Path(__file__).parents[1] / "fixtures" / "schema_v0.sql").read_text()
ROWS = {
    "files": [("s" * 64, "h" * 40, 3, "a.py", 1.0, None), ("t" * 64, "i" * 40, 4, "b.py", 2.0, 3.0)],
    "devices": [("lamp1", 1, 1.0, 2.0, 5, 3, 20000, "0.1.0", 10, '["ext"]', '{"a.py": "x"}',
                 '{"lamp": {"led": false}}', None, 2.0)],
    "pushes": [(1, "lamp1", "s" * 64, "a.py", 1, 0, 1, "bundle", None, "done", None, "ok", 3, 3,
                1.0, 2.0, 2.0)],
    "push_files": [(1, 0, "s" * 64, "a.py")],
    "push_events": [(1, 1, 1.0, "queued", "a.py"), (2, 1, 1.5, "retrying", "after no connection"),
                    (3, 1, 2.0, "done", "ok")],
    "users": [(1, "admin", "scrypt:hash", 1.0)],
    "api_tokens": [(1, 1, "script", "d" * 64, 1.0, None, None)],
    "device_keys": [("lamp1", "k" * 64, 7, 1.0)],
}


def old_columns(table):
    conn = sqlite3.connect(":memory:")
    conn.executescript(V0)
    return [c[1] for c in conn.execute("PRAGMA table_info(%s)" % table)]


def old_database(path):
    conn = sqlite3.connect(path)
    conn.executescript(V0)
    for table, rows in ROWS.items():
        for row in rows:
            conn.execute("INSERT INTO %s VALUES (%s)" % (table, ",".join("?" * len(row))), row)
    conn.commit()
    conn.close()


def test_an_old_database_is_upgraded_at_start_and_keeps_every_row(tmp_path):
    path = str(tmp_path / "old.sqlite")
    old_database(path)

    create_app({"OTA_DATABASE": path, "OTA_FILE_STORE": str(tmp_path / "files")})

    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
    for table, rows in ROWS.items():
        # the columns of version 0, by name: later versions add some
        columns = ", ".join(old_columns(table))
        if table == "push_events":  # a note moved out of the state column (version 3)
            columns = "id, push_id, at, COALESCE(state, note), detail"
        got = [tuple(r) for r in db.execute("SELECT %s FROM %s ORDER BY rowid" % (columns, table))]
        assert got == rows, table
    assert [r[0] for r in db.execute("SELECT note FROM push_events ORDER BY id")] == \
        [None, "retrying", None]
    assert [r[0] for r in db.execute("SELECT session_epoch FROM users")] == [0]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # what the migrations are for: a delete in a push, a session epoch
    db.execute("INSERT INTO pushes (device, file_sha256, target, state, total, created_at,"
               " updated_at) VALUES ('lamp1', NULL, 'old.txt', 'queued', 0, 3, 3)")
    db.execute("UPDATE users SET session_epoch = session_epoch + 1")
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"pushes_device", "pushes_updated", "push_events_push"} <= indexes


def test_a_new_database_starts_at_the_latest_version_and_a_restart_changes_nothing(tmp_path):
    path = str(tmp_path / "new.sqlite")
    init_db(path)
    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
    schema = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    init_db(path)
    assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST


def test_a_database_made_between_versions_is_upgraded_too(tmp_path):
    """Made by a schema.sql that already had a change, with user_version still 0: each
    migration checks what it changes."""
    path = str(tmp_path / "mid.sqlite")
    init_db(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    init_db(path)
    assert connect(path).execute("PRAGMA user_version").fetchone()[0] == LATEST
