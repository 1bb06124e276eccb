"""Pushes across the processes that share one database (the server, CLI runs).

Issue 11, fault 1: pushes to one device are serialized across every process (a lease on the
device in SQLite), and a push to a device on probation waits for its verdict instead of
sending a trigger the device must refuse. And a push is cancelled from any process: the one
that runs it ends it."""
import hashlib
import io
import re
import subprocess

import pytest

from tests.integration.conftest import server_config
from tests.integration.test_push_cli import FLASK, ROOT, cli_env
from tests.support.app import finished, push_row, registered, take_offline
from tests.support.waiting import wait_until
from webapp import create_app, users
from webapp.db import get_db
from webapp.push import store
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
        # a probation of 4 s: the CLI processes (a second or two to start) come while the
        # first push runs
        dev = devices(name, settings={"confirm_after": 4})
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
    # each one made while the one before it ran said why it waited
    for before, after in zip(order, order[1:]):
        if rows[after]["created_at"] < rows[before]["finished_at"]:
            assert any(e["kind"] == "note" and e["state"] == "held"
                       for e in rows[after]["events"]), rows[after]["events"]
    assert rows[order[1]]["created_at"] < rows[order[0]]["finished_at"]  # they did overlap


def test_the_server_cancels_a_push_that_a_cli_process_runs(server, devices, unique, mosquitto,
                                                           tmp_path):
    name = unique("far")
    dev = devices(name)
    registered(server, name)
    take_offline(server, dev)
    src = tmp_path / "x.py"
    src.write_text("X = 1\n")
    cli = subprocess.Popen([FLASK, "--app", "wsgi", "ota", "push", str(src), "--device", name,
                            "--wait"], cwd=ROOT, env=cli_env(mosquitto, tmp_path, OTA_OFFLINE_WAIT=120),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def waiting_push():
            with server.app_context():
                found = store.find_pushes(get_db(), device=name, state="waiting")
            return found[0]["id"] if found else None
        push_id = wait_until(waiting_push, 30, what="the CLI's push to wait for the device")
        token = api_token(server)
        r = server.test_client().post("/api/pushes/%d/cancel" % push_id,
                                      headers={"Authorization": "Bearer " + token})
        assert r.status_code == 202, r.json
        out, err = cli.communicate(timeout=20)  # ended by its own process, not by the wait
    finally:
        cli.kill()
    assert cli.returncode == 1, out + err
    assert err.strip().splitlines() == ["push failed: cancelled: cancelled by the user"]
    row = push_row(server, push_id)
    assert (row["state"], row["reason"]) == ("failed", "cancelled")
    r = server.test_client().post("/api/pushes/%d/cancel" % push_id,
                                  headers={"Authorization": "Bearer " + token})
    assert r.status_code == 409  # final now


def test_a_push_whose_process_is_gone_is_cancelled_where_it_lies(server, unique):
    from tests.integration.test_push_end import cut_off_push

    push_id = cut_off_push(server, unique("gone"), b"X = 1\n", state="trigger_sent")
    with server.app_context():
        assert server.extensions["dcc_ota"].pushes.cancel(push_id)
    row = push_row(server, push_id)
    assert (row["state"], row["reason"], row["detail"]) == (
        "failed", "cancelled", "cancelled by the user")


def test_the_server_finishes_a_push_whose_cli_process_was_killed(server, devices, unique,
                                                                 mosquitto, tmp_path):
    """Issue 11, fault 4's kind: nothing that was not final is forgotten, whoever ran it."""
    name = unique("orphan")
    dev = devices(name)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    take_offline(server, dev)
    src = tmp_path / "orphan.txt"
    src.write_bytes(b"left behind\n")
    cli = subprocess.Popen([FLASK, "--app", "wsgi", "ota", "push", str(src), "--device", name],
                           cwd=ROOT, env=cli_env(mosquitto, tmp_path, OTA_OFFLINE_WAIT=120),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def waiting_push():
        with server.app_context():
            found = store.find_pushes(get_db(), device=name, state="waiting")
        return found[0]["id"] if found else None
    push_id = wait_until(waiting_push, 30, what="the CLI's push to wait for the device")
    cli.kill()  # SIGKILL: it records nothing
    cli.communicate(timeout=10)
    dev.start()

    row = finished(server, push_id, timeout=60)

    assert (row["state"], row["reason"]) == ("done", None), row
    resumed = [e for e in row["events"] if e["kind"] == "note" and e["state"] == "resumed"]
    assert [e["detail"] for e in resumed] == ["the process that ran it ended"]
    assert (dev.flash_dir / "orphan.txt").read_bytes() == b"left behind\n"


def test_a_cli_that_stops_waiting_leaves_the_outcome_to_the_device_and_the_server(
        server, devices, unique, mosquitto, tmp_path):
    """Found by trying: --timeout shorter than the probation used to record `failed` for an
    update the device then confirmed, and a push without --wait `unconfirmed` for one it
    rolled back. The device decides; the server, adopting the push, records what it says."""
    name = unique("left")
    dev = devices(name, settings={"confirm_after": 3})
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    env = cli_env(mosquitto, tmp_path)
    good = tmp_path / "good.py"
    good.write_text("GOOD = 1\n")

    gave_up = subprocess.run([FLASK, "--app", "wsgi", "ota", "push", str(good), "--device", name,
                              "--wait", "--timeout", "1.5"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)

    assert gave_up.returncode == 3, gave_up.stdout + gave_up.stderr
    assert gave_up.stderr.startswith("delivered, unconfirmed: gave up waiting after 1.5s")
    first = int(re.search(r"^push (\d+):", gave_up.stdout, re.M).group(1))
    row = finished(server, first, timeout=60)
    assert (row["state"], row["reason"]) == ("done", None), row
    assert "left" in [e["state"] for e in row["events"] if e["kind"] == "note"]

    # a bad plugin without --wait: the device rolls it back, and that is what is recorded
    bad = tmp_path / "lamp.py"
    bad.write_text("raise ValueError('bad lamp')\n")
    sent = subprocess.run([FLASK, "--app", "wsgi", "ota", "push", str(bad), "--device", name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    second = int(re.search(r"^push (\d+):", sent.stdout, re.M).group(1))
    row = finished(server, second, timeout=60)
    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert "bad lamp" in row["detail"]
    assert (dev.flash_dir / "lamp.py").read_bytes() != bad.read_bytes()


def test_a_push_past_cancelling_is_not_cancelled_and_ends_as_the_device_says(
        server, devices, unique):
    name = unique("late")
    devices(name, settings={"confirm_after": 3})
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    token = api_token(server)
    client = server.test_client()
    sha256 = upload(client, token, b"LATE = 1\n", "late.py")
    push_id = client.post("/api/pushes", json={"files": [sha256], "devices": [name]},
                          headers={"Authorization": "Bearer " + token}).json["pushes"][0]
    wait_until(lambda: push_row(server, push_id)["state"] == "online", 30,
               what="the device back on probation")

    r = client.post("/api/pushes/%d/cancel" % push_id,
                    headers={"Authorization": "Bearer " + token})

    assert (r.status_code, r.json["error"]) == (409, "too_late"), r.json
    assert "confirms or rolls it back by itself" in r.json["message"]
    assert finished(server, push_id)["state"] == "done"
    missing = client.post("/api/pushes/999999/cancel", headers={"Authorization": "Bearer " + token})
    assert missing.status_code == 404


def test_a_timeout_that_is_not_a_duration_is_a_usage_error(mosquitto, tmp_path):
    src = tmp_path / "x.py"
    src.write_text("X = 1\n")
    for bad in ("-5", "0", "soon"):
        r = subprocess.run([FLASK, "--app", "wsgi", "ota", "push", str(src), "--device", "lamp",
                            "--timeout", bad], cwd=ROOT, env=cli_env(mosquitto, tmp_path),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "--timeout" in r.stderr, (bad, r.stderr)
