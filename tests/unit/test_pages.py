"""The pages render what is stored, escape what devices say, and work without JavaScript."""
import io
import json
import time

from webapp.db import get_db
from webapp.devices import parse_heartbeat


def beat(app, name, **fields):
    doc = dict({"online": True, "interval": 10}, **fields)
    with app.app_context():
        app.extensions["dcc_ota"].registry.record(get_db(), name, parse_heartbeat(
            json.dumps(doc).encode()), now=time.time())


def add_push(app, device, state, reason=None):
    with app.app_context():
        db = get_db()
        f = app.extensions["dcc_ota"].store.save(db, io.BytesIO(device.encode()), "f.py")
        now = time.time()
        cur = db.execute("INSERT INTO pushes (device, file_sha256, target, state, reason, total,"
                         " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                         (device, f.sha256, "main.py", state, reason, f.size, now, now))
        db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
                   (cur.lastrowid, now, state, reason))
        return cur.lastrowid


def test_every_page_renders(client):
    for path in ("/", "/files", "/push", "/history"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert b"<nav" in r.data


def test_the_devices_page_shows_plugin_switches_with_the_reported_state(app, client):
    beat(app, "lamp1", plugins={"lamp": {"led": True, "relay": False}}, boot=4)
    page = client.get("/").data.decode()
    assert 'data-device="lamp1"' in page
    assert 'role="switch" aria-checked="true"\n                  data-plugin="lamp" data-key="led"' \
        in page


def test_the_files_page_names_the_devices_that_carry_a_file(app, client):
    client.post("/api/files", data={"file": (io.BytesIO(b"X = 1\n"), "x.py")})
    import hashlib
    beat(app, "lamp1", files={"x.py": hashlib.sha1(b"X = 1\n").hexdigest()})
    row = client.get("/files").data.decode().split('data-sha1="%s"' % hashlib.sha1(
        b"X = 1\n").hexdigest())[1].split("</tr>")[0]
    assert "lamp1" in row and "x.py" in row


def test_the_upload_form_works_without_javascript(client):
    r = client.post("/files", data={"file": [(io.BytesIO(b"A"), "a.py"), (io.BytesIO(b"B"), "b.py")]},
                    follow_redirects=True)
    assert b"Stored a.py, b.py." in r.data
    r = client.post("/files", data={"file": (io.BytesIO(b"x" * 5000), "big.bin")},
                    follow_redirects=True)
    assert b"Nothing was stored: big.bin is larger than 4096 bytes" in r.data


def test_deleting_a_file_says_so(app, client):
    sha256 = client.post("/api/files", data={"file": (io.BytesIO(b"D"), "d.py")}).json["files"][0]["sha256"]
    r = client.post("/files/%s/delete" % sha256, follow_redirects=True)
    assert b"Deleted d.py." in r.data and b"<code>d.py</code>" not in r.data


def test_pushing_without_devices_or_services_explains_itself(app, client):
    sha256 = client.post("/api/files", data={"file": (io.BytesIO(b"P"), "p.py")}).json["files"][0]["sha256"]
    r = client.post("/push", data={"file": sha256}, follow_redirects=True)
    assert b"Pick at least one file and one device or tag." in r.data
    r = client.post("/push", data={"file": sha256, "device": "lamp1"})
    assert r.status_code == 503 and b"not running" in r.data


def test_history_filters_by_device_and_outcome(app, client):
    add_push(app, "lamp1", "done")
    failed = add_push(app, "lamp1", "failed", "hash mismatch")
    add_push(app, "lamp2", "failed", "device offline")
    page = client.get("/history?device=lamp1&outcome=failed").data.decode()
    assert page.count("<tr class=") == 1 and ">#%d<" % failed in page and "hash mismatch" in page


def test_a_timeline_shows_the_failure_and_a_retry_button(app, client):
    failed = add_push(app, "lamp1", "failed", "no connection")
    page = client.get("/pushes/%d" % failed).data.decode()
    assert "Failed: <strong>no connection</strong>" in page
    assert 'action="/pushes/%d/retry"' % failed in page
    assert client.get("/pushes/9999").status_code == 404
    assert client.get("/pushes/abc").status_code == 404


def test_each_file_on_a_device_card_has_a_delete_form_and_the_runtime_asks_i_know(app, client):
    import re
    beat(app, "lamp1", files={"main.py": "1" * 40, "notes.txt": "2" * 40})
    # the list links to the device's own page, which has a form for each file
    assert 'href="/device/lamp1"' in client.get("/").data.decode()
    page = client.get("/device/lamp1").data.decode()
    forms = re.findall(r'<form method="post" class="delete-file".*?</form>', page, re.S)
    assert len(forms) == 2
    by_name = {re.search(r'name="name" value="([^"]+)"', f).group(1): f for f in forms}
    assert set(by_name) == {"main.py", "notes.txt"}
    for f in forms:
        assert 'action="/devices/lamp1/delete"' in f and 'name="csrf_token"' in f
    assert 'name="force" value="yes" required' in by_name["main.py"]
    assert 'name="force"' not in by_name["notes.txt"]


def test_a_delete_without_the_push_service_explains_itself(app, client):
    beat(app, "lamp1", files={"notes.txt": "2" * 40})
    r = client.post("/devices/lamp1/delete", data={"name": "notes.txt"})
    assert r.status_code == 503 and b"push service is not running" in r.data


def test_cancelling_a_push_that_never_was_is_a_404(client):
    assert client.post("/pushes/999999/cancel").status_code == 404
