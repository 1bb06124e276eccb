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
    finally:
        conn.close()


@click.command("init-db")
def init_db_command():
    """Create the tables if they do not exist."""
    init_db(current_app.config["OTA_DATABASE"])
    click.echo("database ready: %s" % current_app.config["OTA_DATABASE"])


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
