"""Issue 11, fault 2: whatever happens inside a push, it ends in a final state with a reason,
and cancel works on every push that is not final: here the failure path itself fails (the
database refuses the write that records the failure)."""
import io
import socket
import sqlite3
import subprocess

import pytest

from tests.support.app import finished, push_row, registered, take_offline
from tests.support.waiting import wait_until
from webapp.push import store
from tests.integration.conftest import server_config
from webapp import create_app
from webapp.db import get_db
from webapp.services import start_services, stop_services
from webapp.manifest import Item

pytestmark = pytest.mark.integration


def refusing(times):
    """store.finish that raises `times` times (the database busy), then works."""
    real = store.finish
    left = [times]

    def finish(*args, **kwargs):
        if left[0] > 0:
            left[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)
    return finish


def offline_push(server, devices, unique):
    name = unique("end")
    dev = devices(name)
    registered(server, name)
    take_offline(server, dev)
    with server.app_context():
        f = server.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(b"E = 1\n"), "e.py")
        return server.extensions["dcc_ota"].services.pushes.create(get_db(), name, [f])


def test_a_failure_that_cannot_be_recorded_at_once_is_recorded_on_a_second_try(
        server, devices, unique, monkeypatch):
    monkeypatch.setattr(store, "finish", refusing(1))
    push_id = offline_push(server, devices, unique)

    row = finished(server, push_id, timeout=30)

    assert (row["state"], row["reason"]) == ("failed", "device offline"), row


def test_a_push_whose_end_could_not_be_recorded_can_still_be_cancelled(server, devices, unique,
                                                                       monkeypatch):
    services = server.extensions["dcc_ota"].services
    monkeypatch.setattr(store, "finish", refusing(2))
    push_id = offline_push(server, devices, unique)
    wait_until(lambda: services.pushes.wait(push_id, 0.5), 30, what="the push thread to end")
    assert push_row(server, push_id)["state"] == "waiting"  # left behind by its thread
    monkeypatch.undo()

    with server.app_context():
        assert services.pushes.cancel(push_id) is True

    row = push_row(server, push_id)
    assert (row["state"], row["reason"]) == ("failed", "cancelled"), row
    with server.app_context():
        assert services.pushes.cancel(push_id) is False  # final now


def test_a_device_that_restarts_mid_transfer_is_noticed_at_once_and_the_push_retried(
        server, devices, unique):
    """Issue 11, fault 3: the server had sent every byte into the socket buffers when the
    device lost power; its next heartbeat (a new boot, the old files) ends the attempt as
    `transfer broken` at once, instead of a timeout 90 s later, and the retry gets through."""
    name = unique("cut")
    dev = devices(name, kill_at="download")  # once, after the first file of the bundle
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    small, big = b"S = 1\n", bytes(range(256)) * 256  # 64 KB: it fits the socket buffers
    with server.app_context():
        store = server.extensions["dcc_ota"].store
        files = [store.save(get_db(), io.BytesIO(small), "small.py"),
                 store.save(get_db(), io.BytesIO(big), "big.bin")]
        push_id = server.extensions["dcc_ota"].services.pushes.create(get_db(), name, files)

    row = finished(server, push_id, timeout=60)

    assert (row["state"], row["reason"]) == ("done", None), row
    assert dev.cuts == ["download"]
    broken = [e for e in row["events"] if e["state"] == "retrying"]
    assert len(broken) == 1 and "transfer broken: the device restarted" in broken[0]["detail"]
    sent_at = next(e["at"] for e in row["events"] if e["state"] == "sent")
    assert broken[0]["at"] - sent_at < 10  # noticed with its next heartbeat, not at a timeout
    assert (dev.flash_dir / "big.bin").read_bytes() == big


def dead_process():
    """A push owner (push/service.py, process_id) whose process has ended on this host."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process now
    return "%s:%d:gone" % (socket.gethostname(), gone.pid)


def cut_off_push(server, name, data, state="sent"):
    """A push of `data` as notes.txt, as a server killed mid-way leaves it in the database."""
    with server.app_context():
        db = get_db()
        f = server.extensions["dcc_ota"].store.save(db, io.BytesIO(data), "notes.txt")
        push_id = store.insert(db, name, [Item(f, "notes.txt")], False, dead_process())
        store.step(db, push_id, state, None)
        return push_id


@pytest.mark.parametrize("device_has_it, outcome", [
    (True, ("done", None)), (False, ("failed", "server stopped"))])
def test_a_restart_reconciles_a_push_cut_off_with_what_the_device_reports(
        server, devices, unique, device_has_it, outcome):
    """Issue 11, fault 4: the server restarts (resume) with a push that was mid-way; the
    device's next heartbeat says how it ended."""
    name = unique("rec")
    dev = devices(name)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    notes = b"landing\n"
    if device_has_it:
        (dev.flash_dir / "notes.txt").write_bytes(notes)  # applied just before the cut
        dev.stop()
        dev.start()  # its boot lists the file
        registered(server, name, lambda d: d.online and d.boot == 2)
    push_id = cut_off_push(server, name, notes)
    services = server.extensions["dcc_ota"].services

    with server.app_context():
        services.pushes.resume(get_db())
    row = finished(server, push_id, timeout=40)

    assert (row["state"], row["reason"]) == outcome, row
    assert "reconciling" in [e["state"] for e in row["events"]]
    if not device_has_it:
        assert "the device has the old notes.txt" in row["detail"]


def test_a_push_that_cannot_be_resumed_ends_failed_and_the_others_go_on(mosquitto, devices,
                                                                        unique, tmp_path,
                                                                        monkeypatch):
    # role "cli": its pushes adopt nothing by themselves, so only the resume() below does
    app = create_app(server_config(mosquitto, tmp_path))
    start_services(app, role="cli")
    try:
        name = unique("res")
        devices(name)
        registered(app, name, lambda d: d.online and "bundle" in d.features)
        bad = cut_off_push(app, name, b"bad\n", state="queued")
        good = cut_off_push(app, name, b"good\n", state="queued")
        pushes = app.extensions["dcc_ota"].pushes
        real = pushes._items

        def items(db, push_id):
            if push_id == bad:
                raise sqlite3.DatabaseError("database disk image is malformed")
            return real(db, push_id)
        monkeypatch.setattr(pushes, "_items", items)

        with app.app_context():
            adopted = pushes.resume(get_db())

        assert bad not in adopted and good in adopted
        row = push_row(app, bad)
        assert (row["state"], row["reason"]) == ("failed", "server error"), row
        assert "malformed" in row["detail"]
        assert finished(app, good)["state"] == "done"
    finally:
        stop_services(app)
