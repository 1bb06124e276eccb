import hashlib
import io
import re

import pytest

from webapp.db import get_db


def test_health_says_which_part_is_not_working(client):
    """Issue 12: running is not working. Here no MQTT services run in this process: a 503,
    and the checks say it is the broker; the database and the file store work."""
    r = client.get("/api/health")
    assert r.status_code == 503
    assert (r.json["running"], r.json["working"], r.json["ok"]) == (True, False, False)
    assert r.json["checks"] == {"broker": False, "database": True, "file_store": True}
    assert r.json["errors"] == {"broker": "the MQTT services are not running in this process"}
    assert r.json["file_store_free"] > 0


def test_health_without_a_login_tells_only_yes_or_no(anon):
    r = anon.get("/api/health")
    assert r.status_code == 503
    assert set(r.json) == {"running", "working", "ok", "checks", "mqtt_connected"}


def test_health_counts_a_file_store_without_room_for_an_upload_as_not_working(app, client):
    app.config["OTA_MAX_UPLOAD"] = 1 << 62  # no disk has room for that
    r = client.get("/api/health")
    assert r.json["checks"]["file_store"] is False
    assert "less than one upload (OTA_MAX_UPLOAD" in r.json["errors"]["file_store"]


def test_health_counts_a_file_store_it_cannot_write_as_not_working(app, client, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    app.config["OTA_FILE_STORE"] = str(blocked)
    r = client.get("/api/health")
    assert r.status_code == 503 and r.json["checks"]["file_store"] is False
    assert r.json["errors"]["file_store"].startswith("cannot write in %s" % blocked)


def test_upload_twice_is_stored_once(client):
    data = b"print('hi')\n"
    for name in ("main.py", "again.py"):
        r = client.post("/api/files", data={"file": (io.BytesIO(data), name)})
        assert r.status_code == 201
        assert r.json["files"][0]["sha1"] == hashlib.sha1(data).hexdigest()
    files = client.get("/api/files").json["files"]
    assert len(files) == 1 and files[0]["name"] == "main.py"


def test_oversized_upload_gets_a_json_413(client):
    r = client.post("/api/files", data={"file": (io.BytesIO(b"x" * 5000), "big.bin")})
    assert r.status_code == 413
    assert r.json["error"] == "too_large" and "4096" in r.json["message"]
    assert client.get("/api/files").json["files"] == []


def test_push_without_a_running_service_says_so(client):
    r = client.post("/api/pushes", json={"file": "abc", "devices": ["lamp1"]})
    assert r.status_code == 503 and r.json["error"] == "not_running"


def test_bad_push_request_is_a_400_with_a_message(client):
    r = client.post("/api/pushes", json={"devices": ["lamp1"]})
    assert r.status_code == 400 and "file" in r.json["message"]


def test_unknown_things_are_json_404s(client):
    assert client.get("/api/devices/ghost").json["error"] == "not_found"
    assert client.get("/api/pushes/99").status_code == 404
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json["error"] == "not_found"


def test_home_page_lists_devices_escaped(app, client):
    from webapp.db import get_db
    from webapp.devices import parse_heartbeat
    with app.app_context():
        app.extensions["dcc_ota"].registry.record(
            get_db(), "lamp1", parse_heartbeat(b'{"online": true, "fw": "<script>x</script>"}'))
    page = client.get("/").data
    assert b"lamp1" in page and b"<script>x" not in page and b"&lt;script&gt;" in page


def beat(app, name, now, **fields):
    import json
    from webapp.db import get_db
    from webapp.devices import parse_heartbeat
    doc = dict({"online": True, "interval": 10}, **fields)
    with app.app_context():
        app.extensions["dcc_ota"].registry.record(get_db(), name, parse_heartbeat(
            json.dumps(doc).encode()), now=now)


def test_devices_since_a_cursor_returns_only_what_changed(app, client):
    import time
    beat(app, "old", time.time() - 5)
    first = client.get("/api/devices").json
    assert [d["name"] for d in first["devices"]] == ["old"]
    beat(app, "new", time.time())
    later = client.get("/api/devices?since=%f" % first["cursor"]).json
    assert [d["name"] for d in later["devices"]] == ["new"]


def test_devices_since_reports_a_device_that_went_silent(app, client):
    import time
    beat(app, "quiet", time.time() - 29, interval=10)  # offline 31 s after its heartbeat
    first = client.get("/api/devices").json
    assert first["devices"][0]["online"] is True
    time.sleep(2.2)  # nothing new arrives, yet it crossed its third missed heartbeat
    went = client.get("/api/devices?since=%f" % first["cursor"]).json["devices"]
    assert [(d["name"], d["online"]) for d in went] == [("quiet", False)]


class FakeBus:
    """Unit tests only: records what would be published."""
    def __init__(self):
        self.sent = []

    def publish(self, topic, payload, retain=False):
        self.sent.append((topic, payload))


def test_a_plugin_command_is_published_to_the_devices_set_topic(app, client):
    class Services:
        bus = FakeBus()
    app.extensions["dcc_ota"].services = Services()
    r = client.post("/api/devices/lamp1/plugins/lamp", json={"led": True})
    assert r.status_code == 202
    assert Services.bus.sent == [("lamp1/lamp/set", '{"led":true}')]
    assert client.post("/api/devices/lamp1/plugins/lamp", json=[1]).status_code == 400
    assert client.post("/api/devices/a+b/plugins/lamp", json={"x": 1}).status_code == 400
    big = client.post("/api/devices/lamp1/plugins/lamp", json={"x": "y" * 600})
    assert big.status_code == 400 and big.json["error"] == "too_large"


def test_a_deleted_file_leaves_the_list_and_its_bytes_but_can_come_back(app, client):
    import os
    r = client.post("/api/files", data={"file": (io.BytesIO(b"gone soon"), "tmp.py")})
    sha256 = r.json["files"][0]["sha256"]
    path = app.extensions["dcc_ota"].store.path(sha256)
    assert client.delete("/api/files/" + sha256).status_code == 204
    assert client.get("/api/files").json["files"] == [] and not os.path.exists(path)
    assert client.delete("/api/files/" + sha256).status_code == 404
    again = client.post("/api/files", data={"file": (io.BytesIO(b"gone soon"), "back.py")})
    assert again.json["files"][0]["name"] == "back.py" and os.path.exists(path)


def test_a_delete_list_of_the_wrong_shape_is_a_400_naming_the_form(client):
    for body, message in (({"delete": "notes.txt", "devices": ["lamp1"]},
                           "delete: input should be a valid list"),
                          ({"delete": [1], "devices": ["lamp1"]},
                           "delete.0: input should be a valid string")):
        r = client.post("/api/pushes", json=body)
        assert r.status_code == 400, body
        assert r.json == {"error": "bad_request", "message": message}
    for body in ({"delete": [], "devices": ["lamp1"]}, {"files": [], "devices": ["lamp1"]}):
        r = client.post("/api/pushes", json=body)
        assert r.status_code == 400, body
        assert r.json["error"] == "bad_request" and '"delete"' in r.json["message"]


@pytest.mark.parametrize("value", ["false", "true", 1, 0, None, [True], {}])
def test_force_and_rotate_take_only_json_booleans(client, value):
    r = client.post("/api/pushes", json={"delete": ["main.py"], "devices": ["lamp1"],
                                         "force": value})
    assert r.status_code == 400
    assert r.json["message"] == "force: input should be a valid boolean"
    r = client.post("/api/devices", json={"name": "lamp1", "rotate": value})
    assert r.status_code == 400
    assert r.json["message"] == "rotate: input should be a valid boolean"


@pytest.mark.parametrize("path", ["/api/pushes", "/api/devices",
                                  "/api/devices/lamp1/plugins/lamp"])
def test_json_nested_too_deep_is_a_400_not_a_500(client, path, caplog):
    deep = "[" * 5000 + "]" * 5000
    r = client.post(path, data=deep, content_type="application/json")
    assert r.status_code == 400
    assert r.json == {"error": "bad_request", "message": "the JSON body is nested too deeply"}
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("body", ["[1, 2]", '"lamp1"', "7"])
def test_a_json_body_that_is_not_an_object_is_a_400(client, body):
    r = client.post("/api/devices", data=body, content_type="application/json")
    assert r.status_code == 400 and r.json["error"] == "bad_request"


def test_a_delete_alone_is_a_valid_push_request(client):
    r = client.post("/api/pushes", json={"delete": ["notes.txt"], "devices": ["lamp1"]})
    assert r.status_code == 503 and r.json["error"] == "not_running"  # valid: no service here


def test_a_multi_file_upload_with_one_bad_name_stores_none(client):
    r = client.post("/api/files", data={"file": [(io.BytesIO(b"OK = 1\n"), "ok.py"),
                                                 (io.BytesIO(b"EVIL = 1\n"), "../evil.py")]})
    assert r.status_code == 400 and r.json["error"] == "bad_name"
    assert r.json["message"].startswith("nothing was stored: ")
    assert client.get("/api/files").json["files"] == []


def test_a_multi_file_upload_with_one_too_large_stores_none_and_keeps_what_was_there(client):
    before = client.post("/api/files", data={"file": (io.BytesIO(b"KEEP = 1\n"), "keep.py")})
    assert before.status_code == 201
    r = client.post("/api/files", data={"file": [(io.BytesIO(b"NEW = 1\n"), "new.py"),
                                                 (io.BytesIO(b"KEEP = 1\n"), "again.py"),
                                                 (io.BytesIO(b"x" * 5000), "big.bin")]})
    assert r.status_code == 413 and r.json["message"].startswith("nothing was stored: ")
    assert [f["name"] for f in client.get("/api/files").json["files"]] == ["keep.py"]


def test_the_upload_form_is_all_or_nothing_too(client):
    r = client.post("/files", data={"file": [(io.BytesIO(b"OK = 1\n"), "ok.py"),
                                             (io.BytesIO(b"x"), "a\x01b.py")]},
                    follow_redirects=True)
    assert b"Nothing was stored: the file name has a control, format or separator character" \
        in r.data
    assert client.get("/api/files").json["files"] == []


def test_force_false_as_a_string_never_stores_a_forced_push_of_the_safe_boot_code(app, client):
    up = client.post("/api/files", data={"file": (io.BytesIO(b"# boot\n"), "boot.py")})
    sha256 = up.json["files"][0]["sha256"]
    r = client.post("/api/pushes", json={"file": sha256, "as": "boot.py", "devices": ["lamp1"],
                                         "force": "false"})
    assert (r.status_code, r.json["message"]) == (400, "force: input should be a valid boolean")
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM pushes").fetchone()[0] == 0


def test_rotate_false_as_a_string_keeps_the_devices_key(client):
    key = client.post("/api/devices", json={"name": "lamp1"}).json["settings"]["key"]
    r = client.post("/api/devices", json={"name": "lamp1", "rotate": "false"})
    assert (r.status_code, r.json["message"]) == (400, "rotate: input should be a valid boolean")
    assert client.get("/api/devices/lamp1/settings").json["key"] == key


@pytest.mark.parametrize("path, body, message", [
    ("/api/devices", '{"name": "lamp1", "rotate": "yes", "rotate": true}',
     "the JSON body: the key 'rotate' is given twice"),
    ("/api/pushes", '{"file": "a", "as": "boot.py", "as": "x.py", "devices": ["lamp1"]}',
     "the JSON body: the key 'as' is given twice"),
    ("/api/devices/lamp1/plugins/lamp", '{"led": NaN}', "the JSON body: NaN is not a JSON number"),
    ("/api/devices/lamp1/plugins/lamp", '{"led": -Infinity}',
     "the JSON body: -Infinity is not a JSON number"),
    ("/api/devices/lamp1/plugins/lamp", '{"led": "\\ud800"}',
     "the JSON body has a string that is not valid Unicode (a lone surrogate)"),
    ("/api/pushes", '{"file": "a", "files": ["b"], "devices": ["lamp1"]}',
     "body: give 'file' or 'files', not both"),
    ("/api/pushes", '{"file": "a", "device": "x", "devices": ["y"]}',
     "body: give 'device' or 'devices', not both"),
    ("/api/pushes", '{"file": "a", "devices": ["lamp1", "lamp1"]}',
     "body: lamp1 is named twice in 'devices'"),
    ("/api/pushes", '{"file": "' + "x" * 200 + '", "devices": ["lamp1"]}',
     "file: string should have at most 128 characters"),
])
def test_an_ambiguous_or_unstorable_body_is_a_400_that_says_why(client, path, body, message):
    r = client.post(path, data=body, content_type="application/json")
    assert r.status_code == 400 and r.json == {"error": "bad_request", "message": message}


def test_a_token_on_a_route_that_does_not_exist_gets_a_404(app, client):
    page = client.post("/tokens", data={"name": "script"}).data.decode()
    token = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    script = app.test_client()
    for url in ("/api/nothing", "/api/pushes/0", "/api/pushes/%d" % 2 ** 63):
        r = script.get(url, headers={"Authorization": "Bearer " + token})
        assert r.status_code == 404, url


def test_a_client_that_accepts_anything_gets_the_page_not_json(anon):
    r = anon.get("/", headers={"Accept": "*/*"})
    assert r.status_code == 302 and "/login" in r.location


def test_a_request_over_the_limit_as_a_whole_is_too_large_by_the_same_name(client):
    # several files each under OTA_MAX_UPLOAD (4 KB here) but together past the request's
    # limit (OTA_MAX_UPLOAD + 64 KB): a folder's release, say
    files = [(io.BytesIO(b"x" * 4000), "f/x%d.bin" % i) for i in range(20)]
    r = client.post("/api/releases", data={"name": "big", "file": files},
                    content_type="multipart/form-data")
    assert (r.status_code, r.json["error"]) == (413, "too_large")
    assert "OTA_MAX_UPLOAD" in r.json["message"]
    assert client.get("/api/files").json["files"] == []
