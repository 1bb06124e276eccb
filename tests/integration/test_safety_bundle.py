"""Safe updates on real simulated devices: bundles, probation, confirmation and rollback.

Pushes go through the server's own services (a `bundle` device gets every push as a bundle);
faults on the link come from a hand-made sender. docs/safety.md describes what is tested.
"""
import hashlib
import io
from pathlib import Path

import pytest

from tests.support.app import finished, registered
from tests.support.devices import MqttWatcher, OneShotSender
from tests.support.files import padded_main_py
from webapp.db import get_db

pytestmark = pytest.mark.integration

FAST = {"confirm_after": 2, "wdt_ms": 1500}
BOOT_MAIN = padded_main_py(600, tag="old")


def stored(app, data, name):
    with app.app_context():
        return app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)


def push(app, device, files, force=False):
    """files: [(name on device, bytes)]; returns the push id."""
    fs = [stored(app, data, name) for name, data in files]
    targets = [name for name, _ in files]
    with app.app_context():
        svc = app.extensions["dcc_ota"].services.pushes
        if len(fs) == 1:
            return svc.create(get_db(), device, fs[:1], targets[0], force)
        # several files take their stored names
        return svc.create(get_db(), device, fs, None, force)



def sha1(data):
    return hashlib.sha1(data).hexdigest()


def ota_dir_clean(flash):
    """No update in flight: no journal, no temporary, backup or crash file."""
    ota = flash / ".ota"
    left = sorted(str(p.relative_to(ota)) for p in ota.rglob("*") if p.is_file()) \
        if ota.exists() else []
    return [n for n in left if n != "counter"]


def start(devices, server, unique, **settings):
    name = unique("safe")
    cfg = dict(FAST)
    cfg.update(settings)
    dev = devices(name, settings=cfg)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    return name, dev


def test_a_three_file_bundle_is_committed_confirmed_and_cleaned_up(server, devices, unique):
    name, dev = start(devices, server, unique)
    files = [("main.py", padded_main_py(2000, tag="b1")), ("util.py", b"X = 1\n" * 300),
             ("notes.txt", b"night lamp\n")]

    row = finished(server, push(server, name, files))

    assert (row["state"], row["reason"]) == ("done", None), row
    steps = [e["state"] for e in row["events"]]
    assert steps[-4:] == ["verified", "rebooting", "online", "done"], steps
    for target, data in files:
        assert (dev.flash_dir / target).read_bytes() == data
    assert ota_dir_clean(dev.flash_dir) == []
    registered(server, name, lambda d: d.files.get("notes.txt") == sha1(files[2][1]))


def test_a_bundle_with_one_corrupted_file_changes_nothing(server, devices, unique):
    name, dev = start(devices, server, unique)
    before = {p: (dev.flash_dir / p).read_bytes() for p in ("main.py", "lamp.py")}
    files = [("main.py", padded_main_py(1500, tag="c")), ("lamp.py", b"# broken lamp\n" * 50),
             ("extra.py", b"Y = 2\n")]
    fs = [stored(server, data, n) for n, data in files]
    # the store's copy of the second file rots: same size, one byte changed
    path = Path(server.extensions["dcc_ota"].store.path(fs[1].sha256))
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0x20
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    with server.app_context():
        push_id = server.extensions["dcc_ota"].services.pushes.create(get_db(), name, fs)

    row = finished(server, push_id)

    assert (row["state"], row["reason"]) == ("failed", "hash mismatch"), row
    assert "lamp.py" in (row["detail"] or "")
    for p, data in before.items():
        assert (dev.flash_dir / p).read_bytes() == data
    assert not (dev.flash_dir / "extra.py").exists()
    assert ota_dir_clean(dev.flash_dir) == []
    assert dev.boots == 1


def test_a_main_py_that_raises_at_import_rolls_back(server, devices, unique):
    name, dev = start(devices, server, unique)
    old = (dev.flash_dir / "main.py").read_bytes()
    bad = b"import runtime\nraise ValueError('lamp wiring check failed')\n"

    row = finished(server, push(server, name, [("main.py", bad)]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert "ValueError: lamp wiring check failed" in row["detail"], row
    assert (dev.flash_dir / "main.py").read_bytes() == old
    assert ota_dir_clean(dev.flash_dir) == []
    registered(server, name, lambda d: d.online and d.files.get("main.py") == sha1(old))


def test_a_main_py_that_hangs_rolls_back_through_the_watchdog(server, devices, unique):
    name, dev = start(devices, server, unique)
    old = (dev.flash_dir / "main.py").read_bytes()
    hang = b"while True:\n    pass\n"

    row = finished(server, push(server, name, [("main.py", hang)]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert row["detail"] == "no healthy boot in 2 tries", row
    assert dev.watchdog_resets == 2
    assert (dev.flash_dir / "main.py").read_bytes() == old
    registered(server, name, lambda d: d.online and d.files.get("main.py") == sha1(old))


def test_a_plugin_that_raises_on_probation_rolls_back_with_its_error(server, devices, unique):
    name, dev = start(devices, server, unique)
    old = (dev.flash_dir / "lamp.py").read_bytes()
    bad = old.replace(b"def poll(self):", b"def poll(self):\n        raise OSError('relay stuck')"
                      b"\n\n    def _poll(self):")
    assert bad != old

    row = finished(server, push(server, name, [("lamp.py", bad)]))

    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert "lamp.poll: OSError: relay stuck" in row["detail"], row
    assert (dev.flash_dir / "lamp.py").read_bytes() == old


def test_boot_py_needs_force(server, devices, unique, mosquitto):
    name, dev = start(devices, server, unique)
    old = (dev.flash_dir / "boot.py").read_bytes()
    new = old + b"# tuned\n"
    manifest = ("%s %d boot.py\n" % (sha1(new), len(new))).encode()
    with MqttWatcher(mosquitto.port) as mq:
        for extra, state in (("|bundle=1", "failed"), ("|bundle=1|force=1", "rebooting")):
            with OneShotSender(manifest, serve=manifest + new) as tx:
                mq.publish(name + "/OTA", tx.trigger("bundle", extra=extra))
                st = mq.wait_json(name + "/ota/status", tx.outcome, timeout=20)
            assert st["state"] == state, st
            if state == "failed":
                assert (st["reason"], st["detail"]) == ("rejected", "boot.py needs force=1")
                assert (dev.flash_dir / "boot.py").read_bytes() == old
            else:
                mq.wait_json(name + "/ota/status", lambda d: d.get("state") == "confirmed"
                             and d.get("token") == tx.token, timeout=30)
                assert (dev.flash_dir / "boot.py").read_bytes() == new


def _bundle(files):
    head = "".join("%s %d %s\n" % (sha1(d), len(d), n) for n, d in files).encode()
    return head, head + b"".join(d for _, d in files)


@pytest.mark.parametrize("cut, reason", [(-700, "transfer broken"), (+5, "size mismatch"),
                                         (0, "timeout")])
def test_a_broken_stream_fails_the_push_and_keeps_the_old_files(cut, reason, server, devices,
                                                                unique, mosquitto):
    """Too short, too long, or a server that stops sending (and holds the socket open)."""
    import socket
    import threading

    name, dev = start(devices, server, unique)
    old = (dev.flash_dir / "main.py").read_bytes()
    head, stream = _bundle([("main.py", padded_main_py(3000, tag="cut")),
                            ("extra.py", b"Z = 3\n" * 100)])
    if cut < 0:
        stream = stream[:cut]
    elif cut > 0:
        stream = stream + b"x" * cut
    with MqttWatcher(mosquitto.port) as mq, OneShotSender(head, serve=stream) as tx:
        if cut == 0:  # stall after 2 KB: a raw server that never closes
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            held = []

            def stall():
                c, _ = srv.accept()
                c.recv(33)
                c.sendall(stream[:2048])
                held.append(c)
            threading.Thread(target=stall, daemon=True).start()
            trig = tx.trigger("bundle", extra="|bundle=2").replace(
                "|%d|" % tx.port, "|%d|" % srv.getsockname()[1], 1)
        else:
            trig = tx.trigger("bundle", extra="|bundle=2")
        mq.publish(name + "/OTA", trig)
        st = mq.wait_json(name + "/ota/status", tx.outcome, timeout=40)
        if cut == 0:
            srv.close()
    assert (st["state"], st["reason"]) == ("failed", reason), st
    assert (dev.flash_dir / "main.py").read_bytes() == old
    assert not (dev.flash_dir / "extra.py").exists()
    assert ota_dir_clean(dev.flash_dir) == []
    assert dev.boots == 1
