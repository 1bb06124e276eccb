"""Issue 11, fault 1: pushes to one device are serialized across every process that shares
the database (a lease on the device in SQLite), and a push to a device on probation waits
for its verdict instead of sending a trigger the device must refuse."""
import hashlib
import io
import re
import subprocess

import pytest

from tests.integration.conftest import FAST, server_config
from tests.integration.test_push_cli import FLASK, ROOT, cli_env
from tests.support.app import finished, push_row, registered
from webapp import create_app, users
from webapp.db import get_db
from webapp.services import start_services, stop_services

pytestmark = pytest.mark.integration


def api_token(app):
    with app.app_context():
        user = users.create_user(get_db(), "admin", "correct horse battery")
        return users.create_token(get_db(), user, "script")


def upload(client, token, data, name):
    r = client.post("/api/files", data={"file": (io.BytesIO(data), name)},
                    headers={"Authorization": "Bearer " + token})
    assert r.status_code == 201, r.json
    return r.json["files"][0]["sha256"]


def test_two_cli_processes_and_the_api_push_to_one_device_one_after_another(
        mosquitto, devices, unique, tmp_path):
    # no retries: a push that got through only by a retry would fail here
    app = create_app(server_config(mosquitto, tmp_path, OTA_RETRIES=0))
    start_services(app, role="server")
    try:
        name = unique("one")
        dev = devices(name, settings=FAST)
        registered(app, name, lambda d: d.online and "bundle" in d.features)
        versions = {who: ("notes from %s\n" % who).encode() * 40 for who in ("cli1", "cli2", "api")}
        for who in ("cli1", "cli2"):
            (tmp_path / who).mkdir()
            (tmp_path / who / "notes.txt").write_bytes(versions[who])
        env = cli_env(mosquitto, tmp_path, OTA_RETRIES=0)
        token = api_token(app)
        client = app.test_client()
        sha256 = upload(client, token, versions["api"], "notes.txt")

        clis = [subprocess.Popen([FLASK, "--app", "wsgi", "ota", "push",
                                  str(tmp_path / who / "notes.txt"), "--device", name, "--wait"],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for who in ("cli1", "cli2")]
        r = client.post("/api/pushes", json={"files": [sha256], "devices": [name]},
                        headers={"Authorization": "Bearer " + token})
        assert r.status_code == 202, r.json
        ids = {"api": r.json["pushes"][0]}
        for who, proc in zip(("cli1", "cli2"), clis):
            out, err = proc.communicate(timeout=150)
            assert proc.returncode == 0, out + err
            assert "done: confirmed after its probation" in out
            ids[who] = int(re.search(r"^push (\d+):", out, re.M).group(1))
        rows = {who: finished(app, push_id, timeout=60) for who, push_id in ids.items()}
    finally:
        stop_services(app)

    for who, row in rows.items():
        assert (row["state"], row["reason"]) == ("done", None), (who, row)
    # one after another: each push's trigger went out after the one before it had ended
    order = sorted(rows, key=lambda who: rows[who]["finished_at"])
    for before, after in zip(order, order[1:]):
        sent = [e["at"] for e in rows[after]["events"] if e["state"] == "trigger_sent"]
        assert len(sent) == 1 and sent[0] >= rows[before]["finished_at"], (before, after)
    last = order[-1]
    assert (dev.flash_dir / "notes.txt").read_bytes() == versions[last]
    sha1 = hashlib.sha1(versions[last]).hexdigest()
    assert rows[last]["files"][0]["sha1"] == sha1
    # the ones that came second and third said why they waited
    waited = [who for who in order[1:] if any(
        e["kind"] == "note" and e["state"] == "held" for e in rows[who]["events"])]
    assert waited == order[1:], [push_row(app, ids[w])["events"] for w in order]
