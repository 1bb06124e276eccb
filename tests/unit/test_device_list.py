"""Issue 13, hundreds of devices: the devices page and /api/devices give one page of a view
(a part of the name, a tag, a state, an order), the live poll sends only what changed in it,
and a file list only when it changed."""
import json
import time

import pytest

from tests.unit.test_pages import beat
from webapp.db import get_db
from webapp.devices import Registry, parse_heartbeat

SHA = "a" * 40


def fleet(app, client):
    """lamp-1..lamp-5 (lamp-2 offline, lamp-3 on probation), relay-1; tags on some."""
    for name in ("lamp-1", "lamp-2", "lamp-3", "lamp-4", "lamp-5", "relay-1"):
        beat(app, name, files={"main.py": SHA}, probation=name == "lamp-3")
    beat(app, "lamp-2", online=False, reason="lost")
    for name, tags in (("lamp-1", ["kitchen"]), ("lamp-4", ["kitchen", "hall"]),
                       ("relay-1", ["garden"])):
        assert client.put("/api/devices/%s/tags" % name, json={"tags": tags}).status_code == 200


def view(client, **query):
    r = client.get("/api/devices", query_string=query)
    assert r.status_code == 200, r.json
    return r.json


def test_a_view_searches_filters_sorts_and_pages(app, client):
    fleet(app, client)
    assert view(client, q="LAMP")["view"]["names"] == ["lamp-1", "lamp-2", "lamp-3", "lamp-4",
                                                       "lamp-5"]
    assert view(client, tag="kitchen")["view"]["names"] == ["lamp-1", "lamp-4"]
    assert view(client, state="offline")["view"]["names"] == ["lamp-2"]
    assert view(client, state="probation")["view"]["names"] == ["lamp-3"]
    assert view(client, q="lamp", tag="kitchen", state="online")["view"]["names"] == [
        "lamp-1", "lamp-4"]
    assert view(client, sort="state")["view"]["names"][:2] == ["lamp-2", "lamp-3"]
    assert view(client, sort="newest")["view"]["names"][0] == "relay-1"

    second = view(client, page=2, per_page=4)
    assert second["view"] == {"names": ["lamp-5", "relay-1"], "total": 6, "page": 2, "pages": 2,
                              "per_page": 4}
    assert [d["name"] for d in second["devices"]] == ["lamp-5", "relay-1"]
    assert view(client, page=99, per_page=4)["view"]["page"] == 2  # past the last: the last
    assert second["counts"] == {"devices": 6, "online": 5, "offline": 1, "probation": 1}
    assert second["tags"] == {"garden": 1, "hall": 1, "kitchen": 2}
    nothing = view(client, q="nobody")
    assert nothing["view"]["names"] == [] and nothing["devices"] == []


def test_a_poll_of_a_view_sends_only_its_devices_that_changed(app, client):
    fleet(app, client)
    first = view(client, q="lamp", per_page=2)
    assert first["view"]["names"] == ["lamp-1", "lamp-2"]
    time.sleep(0.01)
    since = time.time()
    beat(app, "lamp-1", uptime=99, files={"main.py": SHA})
    beat(app, "lamp-4", uptime=99)  # changed, but not on the page
    later = view(client, q="lamp", per_page=2, since=since)
    assert [d["name"] for d in later["devices"]] == ["lamp-1"]
    assert later["view"]["names"] == ["lamp-1", "lamp-2"]


def test_files_changed_leaves_out_a_file_list_that_stayed_the_same(app, client):
    beat(app, "lamp1", files={"main.py": SHA})
    assert view(client, files="changed")["devices"][0]["files"] == {"main.py": SHA}
    time.sleep(0.01)
    since = time.time()
    beat(app, "lamp1", uptime=5, files={"main.py": SHA})
    same = view(client, since=since, files="changed")["devices"][0]
    assert same["uptime"] == 5 and "files" not in same
    assert view(client, since=since)["devices"][0]["files"] == {"main.py": SHA}  # "all"

    beat(app, "lamp1", uptime=6, files={"main.py": SHA, "new.py": "b" * 40})
    changed = view(client, since=since, files="changed")["devices"][0]
    assert changed["files"] == {"main.py": SHA, "new.py": "b" * 40}


def test_the_answer_is_the_devices_json_as_before(app, client):
    beat(app, "lamp1", files={"main.py": SHA}, fw="<b>", micropython=[1, 24, 1, ""])
    listed = client.get("/api/devices").json["devices"][0]
    assert listed == client.get("/api/devices/lamp1").json
    assert listed["fw"] == "<b>" and listed["runs"] == "1.24.1" and listed["online"] is True


def test_the_registry_sees_every_write_of_another_process(app):
    # the CLI tags and forgets from its own process, with its own Registry: the server's
    # parsed rows must follow
    with app.app_context():
        db = get_db()
        server, cli = Registry(), Registry()
        server.record(db, "lamp1", parse_heartbeat(json.dumps(
            {"online": True, "files": {"main.py": SHA}}).encode()), now=100.0)
        assert server.all(db, now=101.0)[0].tags == ()
        cli.set_tags(db, "lamp1", ["kitchen"], now=102.0)
        assert server.all(db, now=103.0)[0].tags == ("kitchen",)
        assert not server.get(db, "lamp1", now=200.0).online  # the clock still counts
        cli.forget(db, "lamp1", now=201.0)
        assert server.all(db, now=202.0) == [] and server.get(db, "lamp1") is None


def test_the_page_shows_one_page_of_the_view_and_works_without_javascript(app, client):
    fleet(app, client)
    page = client.get("/?q=lamp&tag=kitchen&state=&sort=name").data.decode()
    assert 'data-device="lamp-1"' in page and 'data-device="lamp-4"' in page
    assert 'data-device="lamp-3"' not in page and 'data-device="relay-1"' not in page
    assert "Showing 1–2 of 2; 6 in all: 5 online, 1 offline, 1 on probation." in page
    assert '<option value="kitchen" selected>kitchen (2)</option>' in page

    paged = client.get("/?per_page=2&page=2").data.decode()
    assert 'data-device="lamp-3"' in paged and 'data-device="lamp-1"' not in paged
    assert 'href="/?page=1&amp;per_page=2" rel="prev"' in paged or \
        'rel="prev" href="/?page=1&amp;per_page=2"' in paged
    assert "Page 2 of 3" in paged


@pytest.mark.parametrize("query", ["state=bogus", "sort=x", "page=0", "per_page=1000",
                                   "q=" + "x" * 65, "page=x", "tag=" + "x" * 33])
def test_a_bad_view_is_a_400_that_names_the_field(client, query):
    r = client.get("/?" + query)
    assert r.status_code == 400
    field = query.split("=")[0]
    assert client.get("/api/devices?" + query).json["message"].startswith(field + ":")


def test_the_tags_form_sets_a_devices_tags_without_javascript(app, client):
    beat(app, "lamp1")
    r = client.post("/devices/lamp1/tags", data={"tags": "kitchen, lamp  kitchen",
                                                  "next": "/?q=lamp"})
    assert r.status_code == 302 and r.headers["Location"] == "/?q=lamp"
    assert client.get("/api/devices/lamp1").json["tags"] == ["kitchen", "lamp"]
    r = client.post("/devices/lamp1/tags", data={"tags": "has<tag>", "next": "//evil.example"},
                    follow_redirects=True)
    assert b"Tags not changed: a tag is 1 to 32 letters" in r.data
    assert r.request.path == "/device/lamp1"  # never elsewhere
    assert client.get("/api/devices/lamp1").json["tags"] == ["kitchen", "lamp"]
    assert client.post("/devices/nobody/tags", data={"tags": "x"}).status_code == 404


def test_a_device_has_its_own_page(app, client):
    beat(app, "lamp1", files={"main.py": SHA})
    page = client.get("/device/lamp1").data.decode()
    assert 'data-only="lamp1"' in page and 'data-device="lamp1"' in page
    assert client.get("/device/nobody").status_code == 404
