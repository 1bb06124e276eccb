"""Issue 13, "done when": a rollout over 20 real simulated devices (the firmware on the
MicroPython unix port) through a real mosquitto, run by the server's own services, with one
planted failure (a board whose flash is too small for the release), one device offline, one
that runs the release already, a threshold stop, a resume and a server restart in the middle;
and a release that deletes what it does not hold, converging a device with an extra file."""
import hashlib
import io
import time

import pytest

from tests.integration.conftest import server_config
from tests.support.app import registered, take_offline
from tests.support.waiting import wait_until
from webapp import create_app, extension
from webapp.db import get_db
from webapp.push.store import get_push
from webapp.rollout.store import Settings
from webapp.services import start_services, stop_services

pytestmark = pytest.mark.integration

FLASH_KB = 192  # tests/integration/test_safety_nospace.py: ~76 KB free after the firmware
APP = b"# the lamp's application, v2\nLEVEL = 2\n"
DATA = bytes(range(256)) * 360  # 90 KB: more than the small flash has free


def sha1(data):
    return hashlib.sha1(data).hexdigest()


class Server:
    """The app with its services, restartable on the same database and file store."""

    def __init__(self, conf):
        self.conf = conf
        self.app = None

    def start(self):
        self.app = create_app(self.conf)
        assert start_services(self.app, role="server").bus.wait_connected(10)
        return self

    def stop(self):
        stop_services(self.app)

    def call(self, fn):
        with self.app.app_context():
            return fn(extension.of(self.app), get_db())

    def rollout(self, rollout_id):
        return self.call(lambda ext, db: ext.rollouts.describe(db, rollout_id))

    def wait(self, rollout_id, pred, timeout, what):
        return wait_until(lambda: (lambda r: r if pred(r) else None)(self.rollout(rollout_id)),
                          timeout, what=what)


def make_release(server, name, files, delete_extra=False):
    def make(ext, db):
        stored = [(t, ext.store.save(db, io.BytesIO(data), t.rpartition("/")[2]))
                  for t, data in files.items()]
        return ext.releases.create(db, name, stored, delete_extra)
    return server.call(make)


def pushes_of(server, shown):
    return {d["device"]: server.call(lambda ext, db: get_push(db, d["push_id"]))
            for d in shown["devices"] if d["push_id"]}


def most_at_once(pushes):
    """The most pushes whose [created, finished] overlapped at one moment."""
    edges = sorted([(p["created_at"], 1) for p in pushes] +
                   [(p["finished_at"], -1) for p in pushes])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.fixture
def server(mosquitto, tmp_path):
    s = Server(server_config(mosquitto, tmp_path)).start()
    yield s
    s.stop()


def test_a_rollout_over_20_devices_in_waves_stops_resumes_and_survives_a_restart(
        server, devices, unique, tmp_path):
    names = [unique("r%02d" % i) for i in range(20)]
    small, gone, current = names[7], names[13], names[19]
    devs = {}
    for name in names:
        flash = tmp_path / "flash" / name
        if name == current:  # runs the release already
            flash.mkdir(parents=True)
            (flash / "app.py").write_bytes(APP)
            (flash / "data.bin").write_bytes(DATA)
        devs[name] = devices(name, flash=flash, flash_kb=FLASH_KB if name == small else None)
    for name in names:
        registered(server.app, name, lambda d: d.online and "bundle" in d.features, timeout=60)
    take_offline(server.app, devs[gone])
    make_release(server, "lamp-2", {"app.py": APP, "data.bin": DATA})

    settings = Settings(canary=1, wave_size=6, concurrency=3, threshold=0.05,
                        auto_continue=False, offline_wait=15)
    rid = server.call(lambda ext, db: ext.rollouts.create(db, "lamp-2", names, settings))
    shown = server.rollout(rid)
    waves = {}
    for d in shown["devices"]:
        waves.setdefault(d["wave"], []).append(d["device"])
    online = [n for n in names if n not in (gone, current)]
    assert waves == {0: online[:1], 1: online[1:7], 2: online[7:13],
                     3: online[13:] + [gone], None: [current]}

    # the canary alone, then a person's go
    shown = server.wait(rid, lambda r: r["state"] == "waiting_go", 60, "the canary")
    assert shown["counts"]["done"] == 1 and shown["counts"]["pushing"] == 0
    server.call(lambda ext, db: ext.rollouts.resume(db, rid))

    # the small flash fails; one failure in fewer than 20 decided is over 5 %: it stops
    shown = server.wait(rid, lambda r: r["state"] == "stopped", 120, "the threshold stop")
    stopped_at = time.time()
    assert "over the threshold of 5 %" in shown["reason"]
    failed = [d for d in shown["devices"] if d["state"] == "failed"]
    assert [d["device"] for d in failed] == [small]
    assert failed[0]["detail"].startswith("no space"), failed
    assert all(d["state"] == "pending" for d in shown["devices"] if d["wave"] == 3)
    shown = server.wait(rid, lambda r: r["counts"]["pushing"] == 0, 60, "the pushes going")
    assert max(p["created_at"] for p in pushes_of(server, shown).values()) < stopped_at
    assert server.rollout(rid)["state"] == "stopped"  # nothing new started while stopped

    # resumed, then the server restarts while wave 3 is being pushed
    server.call(lambda ext, db: ext.rollouts.resume(db, rid))
    server.wait(rid, lambda r: any(d["state"] == "pushing" and d["wave"] == 3
                                   for d in r["devices"]), 60, "wave 3")
    server.stop()
    server.start()
    shown = server.wait(rid, lambda r: r["state"] == "done", 180, "the rollout's end")

    steps = {d["device"]: d["state"] for d in shown["devices"]}
    assert steps == dict({n: "done" for n in online if n != small},
                         **{small: "failed", gone: "offline", current: "skipped"})
    assert shown["reason"] == "17 done, 1 failed, 1 skipped, 1 offline"
    pushes = pushes_of(server, shown)
    assert current not in pushes and gone not in pushes
    done = [p for p in pushes.values() if p["state"] == "done"]
    # the waves: each starts once the one before has ended; never more than 3 at once
    by_wave = {w: [pushes[n] for n in ns if n in pushes] for w, ns in waves.items()
               if w is not None}
    for w in (1, 2, 3):
        assert min(p["created_at"] for p in by_wave[w]) >= max(
            p["finished_at"] for p in by_wave[w - 1])
    assert most_at_once(pushes.values()) == 3
    assert len(done) == 17
    for name, dev in devs.items():
        if name not in (small, gone):
            assert dev.read_file("app.py") == APP and dev.read_file("data.bin") == DATA, name
    assert "data.bin" not in devs[small].listing() and "app.py" not in devs[small].listing()
    listed = server.call(lambda ext, db: {d.name: ext.releases.running(db, d.files)
                                          for d in ext.registry.all(db)})
    assert {n for n, r in listed.items() if r == "lamp-2"} == set(online + [current]) - {small}
    assert listed[small] == "modified"


def test_a_release_that_deletes_extra_files_converges_a_device(server, devices, unique):
    name = unique("tidy")
    dev = devices(name)
    dev_files = registered(server.app, name, lambda d: d.online and "rm" in d.features).files
    assert "notes.txt" not in dev_files
    make_release(server, "old", {"notes.txt": b"old notes\n"})
    rid = server.call(lambda ext, db: ext.rollouts.create(db, "old", [name], Settings(canary=0)))
    server.wait(rid, lambda r: r["state"] == "done", 60, "the first rollout")
    registered(server.app, name, lambda d: "notes.txt" in d.files)

    make_release(server, "tidy-2", {"app.py": APP}, delete_extra=True)
    rid = server.call(lambda ext, db: ext.rollouts.create(db, "tidy-2", [name],
                                                           Settings(canary=0)))
    shown = server.wait(rid, lambda r: r["state"] == "done", 60, "the rollout")
    assert shown["counts"]["done"] == 1
    push = pushes_of(server, shown)[name]
    assert (push["state"], push["nfiles"]) == ("done", 2)  # app.py written, notes.txt deleted
    assert "notes.txt" not in dev.listing() and dev.read_file("app.py") == APP
    assert "main.py" in dev.listing() and "settings.json" in dev.listing()  # never deleted
    after = registered(server.app, name, lambda d: "notes.txt" not in d.files)
    assert server.call(lambda ext, db: ext.releases.running(db, after.files)) == "tidy-2"

    # a device on the release already is skipped at once, with no push
    rid = server.call(lambda ext, db: ext.rollouts.create(db, "tidy-2", [name],
                                                           Settings(canary=0)))
    shown = server.wait(rid, lambda r: r["state"] == "done", 10, "the skip")
    assert [(d["state"], d["push_id"]) for d in shown["devices"]] == [("skipped", None)]
