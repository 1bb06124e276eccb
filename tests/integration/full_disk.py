"""Uploads onto full disks, run inside a mount namespace of its own (`unshare --map-root-user
--mount`, by test_full_disk.py) where a 200 KB tmpfs is the file store's disk, then the
database's. The real app answers through its own HTTP stack (Flask's test client, no server
needed) and the real CLI runs as a process. Prints one JSON object of what each answered.
"""
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from webapp import create_app, users
from webapp.db import get_db

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def mount_small(where, size="200k"):
    os.makedirs(where, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", where], check=True)


def fill(where):
    """Write until the disk is full (a log that grew, say)."""
    try:
        with open(os.path.join(where, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass


def logged_in(app):
    client = app.test_client()
    with app.app_context():
        users.create_user(get_db(), "admin", PASSWORD)
    page = client.get("/login").data.decode()
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    page = client.get("/").data.decode()  # a new session after the login: a new CSRF token
    client.environ_base["HTTP_X_CSRFTOKEN"] = re.search(
        r'name="csrf-token" content="([^"]+)"', page).group(1)
    return client


def stored_names(client):
    return [f["name"] for f in client.get("/api/files").json["files"]]


def main():
    tmp = Path(tempfile.mkdtemp(prefix="full-"))
    out = {}

    # 1. the file store's disk: 200 KB, and a 300 KB upload
    store = str(tmp / "store")
    mount_small(store)
    env = {"OTA_DATABASE": str(tmp / "a.sqlite"), "OTA_FILE_STORE": store,
           "OTA_ADVERTISE_HOST": "127.0.0.1", "OTA_TRANSFER_BIND": "127.0.0.1"}
    app = create_app(dict(env))
    client = logged_in(app)
    big = os.urandom(300 * 1024)
    r = client.post("/api/files", data={"file": [(io.BytesIO(b"OK = 1\n"), "ok.py"),
                                                 (io.BytesIO(big), "big.bin")]})
    out["api"] = [r.status_code, r.json]
    r = client.post("/files", data={"file": (io.BytesIO(big), "big.bin")},
                    follow_redirects=True)
    out["page"] = [r.status_code, re.findall(r'<p class="flash error">([^<]*)</p>',
                                             r.data.decode())]
    out["stored"] = stored_names(client)
    out["left_on_disk"] = sorted(os.listdir(store))
    (tmp / "big.bin").write_bytes(big)
    cli = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "ota",
                          "push", str(tmp / "big.bin"), "--device", "lamp1"],
                         cwd=ROOT, env=dict(os.environ, **env), capture_output=True, text=True,
                         timeout=60)
    out["cli"] = [cli.returncode, cli.stderr]
    fill(store)
    r = client.get("/api/health")
    out["health_store"] = [r.status_code, r.json]

    # 2. the database's disk: the database on a full 1 MB disk, the store elsewhere
    dbdir = str(tmp / "dbdisk")
    mount_small(dbdir, "1m")
    app = create_app({"OTA_DATABASE": os.path.join(dbdir, "b.sqlite"),
                      "OTA_FILE_STORE": str(tmp / "store2"), "OTA_ADVERTISE_HOST": "127.0.0.1",
                      "OTA_TRANSFER_BIND": "127.0.0.1"})
    client = logged_in(app)
    fill(dbdir)
    r = client.post("/api/files", data={"file": (io.BytesIO(os.urandom(64 * 1024)), "x.bin")})
    out["api_db"] = [r.status_code, r.json]
    r = client.get("/api/health")
    out["health_db"] = [r.status_code, r.json]
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
