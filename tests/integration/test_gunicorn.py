"""The server as `make run` starts it: real gunicorn, zero configuration but the ports."""
import hashlib
import json
import urllib.error
import urllib.request

import pytest

from tests.support.mosquitto import Mosquitto, free_port
from tests.support.server import Gunicorn
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return dict(json.loads(exc.read()), status=503)  # /api/health: running, not working


def post_file(url, name, data, token):
    boundary = "----dccota"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % (boundary, name)).encode()
            + data + ("\r\n--%s--\r\n" % boundary).encode())
    req = urllib.request.Request(url, body, {"Content-Type": "multipart/form-data; boundary="
                                             + boundary, "Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def post_json(url, doc, token):
    req = urllib.request.Request(url, json.dumps(doc).encode(), {
        "Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read())


@pytest.fixture
def gunicorn(tmp_path):
    """Start gunicorn with the given extra environment; stopped with SIGTERM at the end."""
    servers = []

    def start(**env):
        servers.append(Gunicorn(tmp_path / ("server%d" % len(servers)), **env).start())
        return servers[-1].url, servers[-1].api_token()
    yield start
    for server in servers:
        server.stop()


def test_zero_config_server_with_embedded_broker_pushes_through_the_api(gunicorn, devices,
                                                                        unique):
    broker = free_port()
    base, token = gunicorn(OTA_EMBEDDED_BROKER_PORT=broker, OTA_EMBEDDED_BROKER_BIND="127.0.0.1")
    wait_until(lambda: get(base + "/api/health")["mqtt_connected"], 20, what="MQTT up")
    name = unique("gu")
    dev = devices(name, broker_port=broker)
    wait_until(lambda: any(d["name"] == name and d["online"]
                           for d in get(base + "/api/devices", token)["devices"]), 20, what=name)
    data = b"LED_ON_AT_BOOT = False\n" * 40

    f = post_file(base + "/api/files", "config.py", data, token)["files"][0]
    status, created = post_json(base + "/api/pushes", {"file": f["sha256"], "devices": [name]},
                                token)
    assert status == 202
    push = wait_until(lambda: (lambda p: p if p["state"] in ("done", "failed") else None)(
        get(base + "/api/pushes/%d" % created["pushes"][0], token)), 30, what="the push")

    assert push["state"] == "done", push
    assert (dev.flash_dir / "config.py").read_bytes() == data
    device = get(base + "/api/devices/" + name, token)
    assert device["files"]["config.py"] == hashlib.sha1(data).hexdigest()


def test_a_broker_that_is_down_at_start_is_reached_once_it_is_up(gunicorn):
    port = free_port()
    base, _token = gunicorn(MQTT_BROKER_URL="127.0.0.1", MQTT_BROKER_PORT=port)
    health = get(base + "/api/health")
    # the worker lives on, and says what does not work
    assert (health["status"], health["running"], health["working"]) == (503, True, False)
    assert health["checks"] == {"broker": False, "database": True, "file_store": True}
    with Mosquitto(port=port):
        wait_until(lambda: get(base + "/api/health")["mqtt_connected"], 40,
                   what="the server to connect to the late broker")
        assert "status" not in get(base + "/api/health")  # a 200: working
