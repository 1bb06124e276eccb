"""Issue 13, groups: a person tags devices (a room, a kind) from the API, the CLI and the
page; open pages get the change through the live list's cursor; a forgotten device loses its
tags."""
import time

from tests.unit.test_pages import beat


def test_tags_are_set_listed_and_sent_to_open_pages(app, client):
    beat(app, "lamp1")
    beat(app, "lamp2")
    since = time.time() - 0.5
    r = client.put("/api/devices/lamp1/tags", json={"tags": ["kitchen", "lamp", "kitchen"]})
    assert (r.status_code, r.json) == (200, {"name": "lamp1", "tags": ["kitchen", "lamp"]})
    client.put("/api/devices/lamp2/tags", json={"tags": ["lamp"]})

    assert client.get("/api/tags").json == {"tags": {"kitchen": 1, "lamp": 2}}
    changed = client.get("/api/devices?since=%f" % since).json["devices"]
    assert {d["name"]: d["tags"] for d in changed} == {"lamp1": ["kitchen", "lamp"],
                                                      "lamp2": ["lamp"]}
    assert client.get("/api/devices/lamp1").json["tags"] == ["kitchen", "lamp"]

    r = client.put("/api/devices/lamp1/tags", json={"tags": []})
    assert r.json["tags"] == [] and client.get("/api/tags").json == {"tags": {"lamp": 1}}


def test_bad_tags_are_refused_with_the_rule_and_change_nothing(app, client):
    beat(app, "lamp1")
    client.put("/api/devices/lamp1/tags", json={"tags": ["lamp"]})
    for body, status in (({"tags": ["has space"]}, 400), ({"tags": ["x" * 33]}, 400),
                         ({"tags": "lamp"}, 400), ({"tags": [1]}, 400),
                         ({"tags": ["t%d" % i for i in range(17)]}, 400), ({}, 400),
                         ({"tags": ["<script>"]}, 400)):
        r = client.put("/api/devices/lamp1/tags", json=body)
        assert r.status_code == status, body
        assert r.json["error"] in ("bad_tag", "bad_request"), r.json
    assert client.put("/api/devices/nobody/tags", json={"tags": ["a"]}).status_code == 404
    assert client.get("/api/devices/lamp1").json["tags"] == ["lamp"]


def test_the_cli_tags_and_untags(app):
    beat(app, "lamp1")
    runner = app.test_cli_runner()
    r = runner.invoke(args=["ota", "tag", "lamp1", "kitchen", "lamp"])
    assert r.exit_code == 0 and "lamp1: kitchen, lamp" in r.output
    r = runner.invoke(args=["ota", "untag", "lamp1", "kitchen"])
    assert r.exit_code == 0 and "lamp1: lamp" in r.output
    r = runner.invoke(args=["ota", "tag", "lamp1", "bad tag"])
    assert r.exit_code == 2 and "a tag is 1 to 32 letters" in r.output
    r = runner.invoke(args=["ota", "tag", "nobody", "x"])
    assert r.exit_code == 2 and "no device named 'nobody'" in r.output
    listing = runner.invoke(args=["ota", "devices"]).output
    assert "lamp1" in listing and " lamp\n" in listing


def test_a_forgotten_device_loses_its_tags(app, client):
    beat(app, "away")
    client.put("/api/devices/away/tags", json={"tags": ["garden"]})
    beat(app, "away", online=False, reason="lost")
    assert client.post("/api/devices/away/forget").status_code == 200
    beat(app, "away")
    assert client.get("/api/devices/away").json["tags"] == []
    assert client.get("/api/tags").json == {"tags": {}}


def test_the_push_form_picks_by_tag_and_skips_devices_that_have_the_files(app, client):
    import hashlib
    import io
    data = b"print('hall')\n"
    beat(app, "lamp1", files={"app.py": hashlib.sha1(data).hexdigest()})
    beat(app, "lamp2")
    for name in ("lamp1", "lamp2"):
        client.put("/api/devices/%s/tags" % name, json={"tags": ["hall"]})
    sha256 = client.post("/api/files", data={"file": (io.BytesIO(data), "app.py")}
                         ).json["files"][0]["sha256"]
    page = client.get("/push").data.decode()
    assert 'name="tag" value="hall"' in page and "(2)" in page

    r = client.post("/push", data={"file": sha256, "tag": "nobody"}, follow_redirects=True)
    assert b"Not pushed: no device matches: tags nobody." in r.data
    r = client.post("/push", data={"file": sha256, "tag": "hall", "only_needing": "yes",
                                   "device": "lamp1"}, follow_redirects=False)
    # the pick leaves lamp2 alone; no push service runs in a unit test: that says so
    assert r.status_code == 503 and b"not running" in r.data
    r = client.post("/push", data={"file": sha256, "device": "lamp1", "only_needing": "yes"},
                    follow_redirects=True)
    assert b"every device picked (1) is as this push would leave it already" in r.data
    r = client.post("/api/pushes", json={"file": sha256, "tags": ["hall"], "only_needing": True,
                                         "devices": ["lamp1"]})
    assert r.status_code == 503  # picked lamp2; pushes do not run here
    r = client.post("/api/pushes", json={"file": sha256, "devices": ["lamp1"],
                                         "only_needing": True})
    assert (r.status_code, r.json["pushes"]) == (200, [])  # nothing to do: not an error
    assert "is as this push would leave it already" in r.json["message"]
    r = client.post("/api/pushes", json={"file": sha256, "tags": ["nobody"]})
    assert (r.status_code, r.json["error"]) == (400, "no_devices")


def test_only_needing_counts_deletes_and_leaves_an_unknown_file_to_the_push(app, client):
    beat(app, "has", files={"notes.txt": "a" * 40})
    beat(app, "hasnt")
    client.put("/api/devices/has/tags", json={"tags": ["hall"]})
    client.put("/api/devices/hasnt/tags", json={"tags": ["hall"]})
    r = client.post("/api/pushes", json={"delete": ["notes.txt"], "devices": ["hasnt"],
                                         "only_needing": True})
    assert (r.status_code, r.json["pushes"]) == (200, [])  # nothing to delete there
    r = client.post("/api/pushes", json={"delete": ["notes.txt"], "tags": ["hall"],
                                         "only_needing": True})
    assert r.status_code == 503  # "has" was picked; pushes do not run in a unit test
    r = client.post("/api/pushes", json={"file": "nosuchfile", "tags": ["hall"],
                                         "only_needing": True})
    assert r.status_code == 503  # not "no_devices": the push itself refuses an unknown file
