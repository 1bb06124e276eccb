"""Issue 13 (first part): a device not heard from can be forgotten by a person, from the
page, the API or the CLI, never by the server on its own: its record and its key go, its push
history stays, open pages drop its card, and a heartbeat brings it back as new."""
import re
import time

from tests.unit.test_pages import add_push, beat
from webapp import keys
from webapp.db import get_db


def gone(app, name):
    """The device's last will: offline."""
    beat(app, name, online=False, reason="lost")


def test_an_online_device_is_not_forgotten_and_an_offline_one_is(app, client):
    beat(app, "lamp1")
    with app.app_context():
        keys.add(get_db(), "lamp1")
    add_push(app, "lamp1", "done")
    assert client.post("/api/devices/nobody/forget").status_code == 404
    r = client.post("/api/devices/lamp1/forget")
    assert (r.status_code, r.json["error"]) == (409, "online")
    assert "would be back with its next heartbeat" in r.json["message"]

    since = time.time() - 0.5
    gone(app, "lamp1")
    r = client.post("/api/devices/lamp1/forget")

    assert (r.status_code, r.json) == (200, {"forgotten": "lamp1"})
    listing = client.get("/api/devices").json
    assert listing["devices"] == [] and listing["forgotten"] == []
    assert client.get("/api/devices?since=%f" % since).json["forgotten"] == ["lamp1"]
    with app.app_context():
        assert keys.get(get_db(), "lamp1") is None  # its key went with it
    assert [p["device"] for p in client.get("/api/pushes").json["pushes"]] == ["lamp1"]

    beat(app, "lamp1")  # it comes back: a device again, no longer "forgotten"
    again = client.get("/api/devices?since=%f" % since).json
    assert [d["name"] for d in again["devices"]] == ["lamp1"] and again["forgotten"] == []


def test_the_page_offers_forget_only_for_a_device_that_is_gone(app, client):
    beat(app, "here")
    beat(app, "away")
    gone(app, "away")
    page = client.get("/").data.decode()
    forms = dict(re.findall(r'<form method="post" class="forget"[^>]*action="/devices/([^/]+)/'
                            r'forget"[^>]*?( hidden)?>', page))
    assert forms == {"here": " hidden", "away": ""}

    r = client.post("/devices/away/forget", follow_redirects=True)
    assert b"Forgot away: its record and its key" in r.data
    assert b'data-device="away"' not in r.data
    r = client.post("/devices/here/forget", follow_redirects=True)
    assert b"Not forgotten: here is online" in r.data


def test_the_cli_forgets_with_one_line(app):
    beat(app, "away")
    gone(app, "away")
    runner = app.test_cli_runner()
    done = runner.invoke(args=["ota", "forget", "away"])
    assert done.exit_code == 0 and "forgot away" in done.output
    again = runner.invoke(args=["ota", "forget", "away"])
    assert again.exit_code == 2 and "cannot forget away: no device away" in again.output
