"""push/store.py and push/states.py against a real SQLite database: the device lease that
keeps pushes to one device apart across processes, and a timeline's notes kept apart from
its states."""
import io
import os
import socket
import sqlite3
import subprocess

import pytest

from webapp.db import get_db
from webapp.manifest import Item
from webapp.push import store
from webapp.push.service import PushService
from webapp.push.states import FINAL, LIST_FILTERS, Note, State, for_scripts


@pytest.fixture
def db(app):
    with app.app_context():
        yield get_db()


def new_push(app, db, device="lamp1", owner="host:1:a"):
    f = app.extensions["dcc_ota"].store.save(db, io.BytesIO(b"X = 1\n"), "x.py")
    return store.insert(db, device, [Item(f, "x.py")], False, owner)


def test_one_push_holds_a_device_until_it_ends_or_its_lease_runs_out(app, db):
    first, second = new_push(app, db, owner="a"), new_push(app, db, owner="b")
    other_device = new_push(app, db, device="lamp2", owner="b")

    assert store.take_lease(db, first, "lamp1", now=100.0) is None
    assert store.take_lease(db, first, "lamp1", now=101.0) is None  # its own: kept
    held = store.take_lease(db, second, "lamp1", now=101.0)
    assert (held["id"], held["owner"]) == (first, "a")
    assert store.take_lease(db, other_device, "lamp2", now=101.0) is None  # another device

    # renewed while its run lives; a run that is gone is not renewed
    assert store.renew_leases(db, "a", [first], now=110.0) == 1
    assert store.renew_leases(db, "a", [], now=110.0) == 0
    assert store.take_lease(db, second, "lamp1", now=110.0 + store.LEASE_SECONDS - 1) is not None
    # a killed process renews nothing: its lease runs out
    assert store.take_lease(db, second, "lamp1", now=110.0 + store.LEASE_SECONDS + 1) is None


def test_the_end_of_a_push_frees_its_device(app, db):
    first, second = new_push(app, db, owner="a"), new_push(app, db, owner="b")
    store.take_lease(db, first, "lamp1", now=100.0)
    store.finish(db, first, State.DONE, None, "ok")
    assert store.take_lease(db, second, "lamp1", now=100.5) is None


def test_a_lease_of_a_gone_process_is_broken_only_by_its_owner_name(app, db):
    first, second = new_push(app, db, owner="a"), new_push(app, db, owner="b")
    store.take_lease(db, first, "lamp1", now=100.0)
    store.break_lease(db, first, "someone else")
    assert store.take_lease(db, second, "lamp1", now=100.5) is not None
    store.break_lease(db, first, "a")
    assert store.take_lease(db, second, "lamp1", now=100.5) is None


def test_owner_gone_sees_processes_of_this_host_only(app):
    service = PushService(app, None, None)
    service.owner = "%s:%d:now" % (socket.gethostname(), os.getpid())
    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    assert service.owner_gone(None)
    assert service.owner_gone("%s:%d:x" % (host, ended.pid))
    assert service.owner_gone("%s:%d:before" % (host, os.getpid()))  # an earlier life
    assert not service.owner_gone(service.owner)
    assert not service.owner_gone("%s:%d:x" % (host, os.getppid()))  # alive
    assert not service.owner_gone("elsewhere:%d:x" % ended.pid)  # cannot tell: its lease does


def test_a_note_is_not_a_state(app, db):
    push_id = new_push(app, db)
    store.note(db, push_id, Note.RETRYING, "attempt 2 of 2")
    store.step(db, push_id, State.TRIGGER_SENT, "extended form")

    push = store.get_push(db, push_id)
    assert push["state"] == "trigger_sent"
    assert [(e["state"], e["kind"]) for e in push["events"]] == [
        ("queued", "state"), ("retrying", "note"), ("trigger_sent", "state")]
    rows = db.execute("SELECT state, note FROM push_events WHERE push_id = ? ORDER BY id",
                      (push_id,)).fetchall()
    assert [tuple(r) for r in rows] == [("queued", None), (None, "retrying"),
                                        ("trigger_sent", None)]
    with pytest.raises(sqlite3.IntegrityError):  # a row is one or the other
        db.execute("INSERT INTO push_events (push_id, at, state, note) VALUES (?, 1, 'sent',"
                   " 'held')", (push_id,))
    with pytest.raises(ValueError):
        store.step(db, push_id, "retrying")
    with pytest.raises(ValueError):
        store.finish(db, push_id, State.SENT)


def test_a_push_never_shows_its_token_or_its_lease(app, db):
    push_id = new_push(app, db)
    store.negotiated(db, push_id, "bundle", "f" * 32)
    store.take_lease(db, push_id, "lamp1")
    push = store.get_push(db, push_id)
    assert not {"token", "owner", "lease_until"} & set(push)
    assert push["form"] == "bundle"


def test_the_scripts_get_the_states_the_server_uses():
    shown = for_scripts()
    assert shown["final"] == ["done", "failed", "unconfirmed"]
    assert shown["failed"] == "failed"
    assert set(shown["states"]) == {s.value for s in State}
    assert "retrying" in shown["notes"] and "retrying" not in shown["states"]
    assert "done" in FINAL and "sent" not in FINAL  # a row's plain string finds its member
    assert LIST_FILTERS == ("done", "failed", "unconfirmed", "active")


def test_the_page_hands_the_states_to_its_scripts(app, db):
    import html
    import json
    import re

    from webapp import users
    client = app.test_client()
    users.create_user(db, "admin", "correct horse battery")
    page = client.get("/login").data.decode()
    found = re.search(r'<body data-push-states="([^"]+)"', page)
    assert found is not None
    assert json.loads(html.unescape(found.group(1))) == for_scripts()
