import hashlib
import io


def test_health_answers_without_services(client):
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json["ok"] is True and r.json["mqtt_connected"] is False


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
        app.extensions["dcc_ota"]["registry"].record(
            get_db(), "lamp1", parse_heartbeat(b'{"online": true, "fw": "<script>x</script>"}'))
    page = client.get("/").data
    assert b"lamp1" in page and b"<script>x" not in page and b"&lt;script&gt;" in page
