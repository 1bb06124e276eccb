"""Pushes run by the server's own services, to real simulated devices over a real mosquitto."""
import hashlib
import io
import os
import signal
import socket

import pytest

from tests.integration.conftest import server_config
from tests.support.app import finished, push_row, registered, take_offline
from tests.support.devices import MqttWatcher
from tests.support.files import padded_main_py
from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until
from webapp import create_app
from webapp.db import get_db
from webapp.services import start_services, stop_services

pytestmark = pytest.mark.integration


def stored(app, data, name):
    with app.app_context():
        return app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)


def push(app, device, data, name, target=None):
    f = stored(app, data, name)
    with app.app_context():
        return app.extensions["dcc_ota"].services.pushes.create(get_db(), device, [f], target)



def test_a_3_8kb_main_py_arrives_and_the_device_reboots_with_it(server, devices, unique):
    name = unique("lamp")
    dev = devices(name)
    before = registered(server, name, lambda d: d.online and d.extended)
    data = padded_main_py(3800)
    sha1 = hashlib.sha1(data).hexdigest()

    row = finished(server, push(server, name, data, "main-v2.py", target="main.py"))

    assert (row["state"], row["reason"]) == ("done", None), row
    assert [e["state"] for e in row["events"]] == [
        "queued", "trigger_sent", "connected", "transferring", "sent", "verified",
        "rebooting", "online", "done"]
    assert row["form"] == "bundle"  # the firmware takes every push through its journal
    assert row["detail"] == "confirmed after its probation, boot %d" % (before.boot + 1)
    assert row["bytes_sent"] == row["total"] == 3800
    assert (dev.flash_dir / "main.py").read_bytes() == data
    after = registered(server, name, lambda d: d.online and d.files.get("main.py") == sha1)
    assert after.boot == before.boot + 1
    assert dev.boots == 2
    assert not (dev.flash_dir / ".ota.part").exists()


def test_a_200kb_file_reaches_a_precompiled_device_on_a_24wk_heap(server, devices, unique):
    # Issue 2's budget, through the whole server path: a push from the server goes as a
    # bundle, through the journal and probation (the watchdog, the verdict), to the runtime
    # with the night lamp, precompiled as the README sets up a small board. (Compiled on the
    # device it needs 32wK: the bundle code compiles at push time. An ESP8266 has 38wK.)
    name = unique("small")
    dev = devices(name, heap="24wK", precompiled=True)
    registered(server, name, lambda d: d.online)
    data = os.urandom(200 * 1024)

    row = finished(server, push(server, name, data, "blob.bin", target="lib/blob.bin"))

    assert row["state"] == "done", row
    assert (dev.flash_dir / "lib" / "blob.bin").read_bytes() == data
    assert "MemoryError" not in dev.log_text(), dev.log_text()


def test_a_corrupted_stream_fails_with_hash_mismatch_and_keeps_the_old_file(server, devices,
                                                                          unique):
    name = unique("rot")
    dev = devices(name)
    registered(server, name, lambda d: d.online)
    old = (dev.flash_dir / "main.py").read_bytes()
    data = padded_main_py(2000, tag="corrupt")
    f = stored(server, data, "main.py")
    path = server.extensions["dcc_ota"].store.path(f.sha256)
    rotten = bytearray(data)
    rotten[1000] ^= 0xFF  # the bytes on the server's disk rotted after the upload
    with open(path, "wb") as out:
        out.write(rotten)

    with server.app_context():
        push_id = server.extensions["dcc_ota"].services.pushes.create(get_db(), name, [f])
    row = finished(server, push_id)

    assert (row["state"], row["reason"]) == ("failed", "hash mismatch"), row
    assert (dev.flash_dir / "main.py").read_bytes() == old
    assert not (dev.flash_dir / ".ota.part").exists()
    assert dev.boots == 1
    assert registered(server, name).online


def test_a_device_that_never_connects_times_out_and_frees_the_port(mosquitto, tmp_path):
    port = free_port()
    app = create_app(server_config(mosquitto, tmp_path, OTA_TRANSFER_TIMEOUT=1.0,
                                   OTA_TRANSFER_PORTS=(port, port), OTA_RETRIES=1))
    services = start_services(app)
    try:
        assert services.bus.wait_connected(10)
        row = finished(app, push(app, "nobody-home", b"print(1)\n", "main.py"))
    finally:
        stop_services(app)
    assert (row["state"], row["reason"]) == ("failed", "no connection"), row
    assert "within 1s" in row["detail"]
    assert row["form"] == "legacy"  # never heard from: the seed's four fields
    steps = [e["state"] for e in row["events"]]
    assert steps == ["queued", "trigger_sent", "retrying", "trigger_sent", "failed"]
    assert row["attempt"] == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_client_with_a_wrong_token_gets_nothing_and_the_device_still_gets_the_file(
        server, devices, unique, mosquitto):
    name = unique("tok")
    dev = devices(name)
    registered(server, name, lambda d: d.online and d.extended)
    data = padded_main_py(1500, tag="token")
    with MqttWatcher(mosquitto.port, topic="%s/OTA" % name) as sniffer:
        os.kill(dev.pid, signal.SIGSTOP)  # the real device is slow to answer
        try:
            push_id = push(server, name, data, "main.py")
            trigger = sniffer.wait_for("%s/OTA" % name).decode()
            host, port = trigger.split("|")[:2]
            for hello in (b"0" * 32 + b"\n", b"GET / HTTP/1.0\r\n\r\n"):
                with socket.create_connection((host, int(port)), timeout=5) as thief:
                    thief.sendall(hello)
                    assert thief.recv(65536) == b""  # closed without a byte of the file
        finally:
            os.kill(dev.pid, signal.SIGCONT)
        row = finished(server, push_id)
    assert row["state"] == "done", row
    assert (dev.flash_dir / "main.py").read_bytes() == data


def test_a_push_to_an_offline_device_waits_then_fails_with_the_reason(server, devices, unique):
    name = unique("gone")
    dev = devices(name)
    registered(server, name, lambda d: d.online)
    take_offline(server, dev)  # the broker publishes its last will

    row = finished(server, push(server, name, b"print(2)\n", "main.py"), timeout=10)

    assert (row["state"], row["reason"]) == ("failed", "device offline"), row
    assert row["detail"] == "not back within 2s"
    assert [e["state"] for e in row["events"]] == ["queued", "waiting", "failed"]


@pytest.fixture
def patient(mosquitto, tmp_path):
    """An app of its own that waits 60 s for an offline device: the shared one gives up after
    2 s, which a loaded machine can take to get to the next step."""
    app = create_app(server_config(mosquitto, tmp_path, OTA_OFFLINE_WAIT=60.0))
    start_services(app)
    yield app
    stop_services(app)


def waiting_push(app, devices, name, data, target):
    """A device that was online and went away, and a push to it now waiting: (dev, id)."""
    dev = devices(name)
    registered(app, name, lambda d: d.online)
    take_offline(app, dev)  # the broker publishes its last will
    push_id = push(app, name, data, target)
    wait_until(lambda: push_row(app, push_id)["state"] == "waiting", 10, what="waiting")
    return dev, push_id


def test_a_push_waits_for_an_offline_device_and_runs_when_it_returns(patient, devices, unique):
    dev, push_id = waiting_push(patient, devices, unique("back"), b"BACK = 1\n", "back.py")

    dev.start()  # the same flash folder: the device comes back

    row = finished(patient, push_id)
    assert row["state"] == "done", row
    assert (dev.flash_dir / "back.py").read_bytes() == b"BACK = 1\n"


def test_a_waiting_push_can_be_cancelled(patient, devices, unique):
    _, push_id = waiting_push(patient, devices, unique("cancel"), b"NEVER = 1\n", "never.py")

    assert patient.extensions["dcc_ota"].services.pushes.cancel(push_id)

    row = finished(patient, push_id, timeout=5)
    assert (row["state"], row["reason"], row["detail"]) == ("failed", "cancelled",
                                                            "cancelled by the user")


def test_pushes_to_one_device_run_one_after_the_other(server, devices, unique):
    name = unique("queue")
    dev = devices(name)
    registered(server, name, lambda d: d.online)
    first = push(server, name, b"A = 1\n", "a.py")
    second = push(server, name, b"B = 2\n", "b.py")
    rows = [finished(server, first), finished(server, second)]
    assert [r["state"] for r in rows] == ["done", "done"], rows
    assert rows[1]["events"][1]["at"] >= rows[0]["finished_at"]
    assert (dev.flash_dir / "a.py").read_bytes() == b"A = 1\n"
    assert (dev.flash_dir / "b.py").read_bytes() == b"B = 2\n"


def test_the_log_follows_a_push_one_line_per_step(server, devices, unique, caplog):
    """Issue 12: a person follows a push in the server's log without a debugger."""
    name = unique("log")
    devices(name)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    caplog.set_level("INFO", logger="webapp.push")

    push_id = push(server, name, b"LOGGED = 1\n", "logged.py")
    row = finished(server, push_id)

    assert row["state"] == "done", row
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.push"]
    prefix = "push %d %s: " % (push_id, name)
    mine = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    steps = [line.split(" (")[0] for line in mine]
    assert steps == [e["state"] for e in row["events"]], mine
    assert mine[-1].startswith("done (confirmed after its probation")
