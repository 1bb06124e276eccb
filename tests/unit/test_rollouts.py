"""Issue 13, releases and rollouts, decided from the database alone: the waves, the canary
gate, the concurrency limit, skipping devices that run the release, the threshold stop,
pause/resume/cancel, offline devices waited for. Pushes are a fake here (a unit test); the
real ones run in tests/integration/test_rollout.py."""
import io
import time

import pytest

from tests.unit.test_pages import beat
from webapp import extension
from webapp.db import get_db
from webapp.push import store as push_store
from webapp.push.states import State
from webapp.releases import ReleaseError, folder_targets
from webapp.rollout.store import Settings


class FakePushes:
    """PushService's create and cancel: rows in the pushes table, ended by the test."""

    bus = object()

    def __init__(self, fail=()):
        self.made = []  # (device, [targets written], [targets deleted])
        self.fail = set(fail)

    def create(self, db, device, files, name=None, force=False, delete=(), mpy=False):
        items = list(files) + []
        self.made.append((device, [i.target for i in items], list(delete)))
        return push_store.insert(db, device, items, force, "fake")

    def cancel(self, push_id, reason="cancelled", detail=""):
        push_store.finish(get_db(), push_id, State.FAILED, reason, detail)
        return True

    def on_end(self, callback):
        pass


def store_file(app, data, name):
    with app.app_context():
        return extension.of(app).store.save(get_db(), io.BytesIO(data), name)


@pytest.fixture
def fleet(app):
    """20 online devices with v1 of main.py; release v2 holds a new main.py and lib/util.py."""
    v1 = store_file(app, b"print('v1')\n", "main.py")
    v2 = store_file(app, b"print('v2')\n", "main.py")
    util = store_file(app, b"X = 1\n", "util.py")
    for i in range(20):
        beat(app, "d%02d" % i, files={"main.py": v1.sha1, "old.py": v1.sha1})
    beat(app, "d19", files={"main.py": v2.sha1, "lib/util.py": util.sha1})  # on v2 already
    ext = extension.of(app)
    fake = FakePushes()
    ext.rollouts.pushes = fake
    with app.app_context():
        ext.releases.create(get_db(), "v2", [("main.py", v2), ("lib/util.py", util)])
    return ext, fake


def advance(app, ext, rollout_id):
    with app.app_context():
        ext.rollouts.advance(get_db(), rollout_id)
        return ext.rollouts.describe(get_db(), rollout_id)


def end_pushes(app, shown, fail=()):
    """Every push going ends: done, or failed for the devices in `fail`."""
    with app.app_context():
        for d in shown["devices"]:
            if d["state"] == "pushing":
                push_store.finish(get_db(), d["push_id"], State.FAILED if d["device"] in fail
                                  else State.DONE, "rolled back" if d["device"] in fail else None,
                                  "boot 2")


def states(shown):
    return {d["device"]: d["state"] for d in shown["devices"]}


def test_a_rollout_goes_canary_first_then_waves_at_most_n_at_once(app, fleet):
    ext, fake = fleet
    names = ["d%02d" % i for i in range(20)]
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", names,
                                  Settings(canary=1, wave_size=5, concurrency=3))
    shown = advance(app, ext, rid)
    assert shown["counts"]["skipped"] == 1 and states(shown)["d19"] == "skipped"
    assert [d["wave"] for d in shown["devices"]][:7] == [0, 1, 1, 1, 1, 1, 2]
    assert [m[0] for m in fake.made] == ["d00"]  # the canary alone
    assert fake.made[0][1] == ["lib/util.py", "main.py"] and fake.made[0][2] == []

    end_pushes(app, shown)
    shown = advance(app, ext, rid)
    assert (shown["state"], shown["reason"]) == ("waiting_go", "the canary came back healthy: "
                                                              "waiting for a go")
    assert len(fake.made) == 1
    with app.app_context():
        ext.rollouts.resume(get_db(), rid)
    shown = advance(app, ext, rid)
    assert [m[0] for m in fake.made] == ["d00", "d01", "d02", "d03"]  # 3 at once
    shown = advance(app, ext, rid)
    assert len(fake.made) == 4  # none ended: no new one
    end_pushes(app, shown)
    shown = advance(app, ext, rid)
    # d04 and d05 are the rest of wave 1: wave 2 waits for them
    assert [m[0] for m in fake.made][4:] == ["d04", "d05"]
    while shown["state"] == "running":
        end_pushes(app, shown)
        shown = advance(app, ext, rid)
    assert shown["state"] == "done" and shown["counts"]["done"] == 19
    assert shown["reason"] == "19 done, 1 skipped"


def test_too_many_failures_stop_it_and_a_resume_counts_from_there(app, fleet):
    ext, fake = fleet
    names = ["d%02d" % i for i in range(10)]
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", names, Settings(
            canary=1, wave_size=4, concurrency=4, threshold=0.2, auto_continue=True))
    shown = advance(app, ext, rid)
    end_pushes(app, shown)
    shown = advance(app, ext, rid)  # the canary passed: wave 1 (d01-d04) starts
    end_pushes(app, shown, fail={"d02", "d03"})
    shown = advance(app, ext, rid)
    assert (shown["state"], shown["reason"]) == ("stopped", "2 of the 5 devices pushed to failed "
                                                 "(40 %, over the threshold of 20 %)")
    assert shown["failure_share"] == 0.4 and states(shown)["d02"] == "failed"
    assert "rolled back: boot 2" in [d["detail"] for d in shown["devices"]]
    made = len(fake.made)
    assert advance(app, ext, rid)["state"] == "stopped" and len(fake.made) == made
    assert states(shown)["d05"] == "pending"  # the rest untouched

    with app.app_context():
        ext.rollouts.resume(get_db(), rid)
    shown = advance(app, ext, rid)
    assert shown["state"] == "running" and shown["failure_share"] == 0.0
    assert len(fake.made) > made


def test_a_failed_canary_stops_the_rollout(app, fleet):
    ext, fake = fleet
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", ["d00", "d01", "d02"],
                                  Settings(canary=1, wave_size=2, threshold=1.0))
    end_pushes(app, advance(app, ext, rid), fail={"d00"})
    shown = advance(app, ext, rid)
    assert (shown["state"], shown["reason"]) == ("stopped", "the canary failed (d00: rolled back: "
                                                 "boot 2)")
    assert len(fake.made) == 1


def test_an_offline_device_waits_without_holding_up_the_rest(app, fleet):
    ext, fake = fleet
    beat(app, "d03", online=False, reason="lost")
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", ["d03", "d01", "d02"], Settings(
            canary=1, wave_size=5, auto_continue=True, offline_wait=60))
    shown = advance(app, ext, rid)
    assert [d["device"] for d in shown["devices"]] == ["d01", "d02", "d03"]  # online first
    end_pushes(app, shown)
    shown = advance(app, ext, rid)
    assert states(shown) == {"d01": "done", "d02": "pushing", "d03": "waiting"}
    end_pushes(app, shown)
    shown = advance(app, ext, rid)
    assert shown["state"] == "running"  # d03 is waited for
    with app.app_context():  # its wait is over
        ext.rollouts.advance(get_db(), rid, now=time.time() + 61)
        shown = ext.rollouts.describe(get_db(), rid)
    assert states(shown)["d03"] == "offline" and shown["state"] == "done"


def test_an_offline_device_that_comes_back_is_pushed(app, fleet):
    ext, fake = fleet
    beat(app, "d03", online=False, reason="lost")
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", ["d01", "d03"], Settings(
            canary=1, wave_size=5, auto_continue=True))
    end_pushes(app, advance(app, ext, rid))
    assert states(advance(app, ext, rid))["d03"] == "waiting"
    beat(app, "d03")
    shown = advance(app, ext, rid)
    assert states(shown)["d03"] == "pushing" and fake.made[-1][0] == "d03"


def test_pause_resume_cancel_and_their_refusals(app, fleet, client):
    ext, fake = fleet
    r = client.post("/api/rollouts", json={"release": "v2", "devices": ["d01", "d02", "d03"],
                                            "canary": 0, "wave_size": 1})
    assert r.status_code == 202, r.json
    rid = r.json["id"]
    assert client.post("/api/rollouts/%d/pause" % rid).json["state"] == "paused"
    assert advance(app, ext, rid)["counts"]["pushing"] == 0
    r = client.post("/api/rollouts/%d/pause" % rid)
    assert (r.status_code, r.json["error"]) == (409, "conflict")
    assert client.post("/api/rollouts/%d/resume" % rid).json["state"] == "running"
    shown = advance(app, ext, rid)
    assert shown["counts"]["pushing"] == 1
    r = client.post("/api/rollouts/%d/cancel" % rid)
    assert r.json["state"] == "cancelled" and r.json["counts"]["cancelled"] == 2
    shown = advance(app, ext, rid)
    assert states(shown) == {"d01": "cancelled", "d02": "cancelled", "d03": "cancelled"}
    assert client.post("/api/rollouts/%d/resume" % rid).status_code == 409
    assert client.post("/api/rollouts/999/cancel").status_code == 404
    assert client.get("/api/rollouts/999").status_code == 404
    assert [r["id"] for r in client.get("/api/rollouts").json["rollouts"]] == [rid]


def test_a_rollout_picks_by_tag_and_refuses_what_it_cannot_do(app, fleet, client):
    client.put("/api/devices/d05/tags", json={"tags": ["kitchen"]})
    client.put("/api/devices/d06/tags", json={"tags": ["kitchen", "lamp"]})
    r = client.post("/api/rollouts", json={"release": "v2", "tags": ["kitchen"]})
    assert r.status_code == 202 and [d["device"] for d in r.json["devices"]] == ["d05", "d06"]
    for body, message in (
            ({"release": "nope", "devices": ["d01"]}, "no release named nope"),
            ({"release": "v2", "tags": ["nobody"]}, "no device matches: tags nobody"),
            ({"release": "v2"}, "no devices picked: name devices or tags"),
            ({"release": "v2", "devices": ["bad name"]}, "device names are")):
        r = client.post("/api/rollouts", json=body)
        assert r.status_code == 400 and message in r.json["message"], r.json
    for body in ({"release": "v2", "devices": ["d01"], "threshold": 101},
                 {"release": "v2", "devices": ["d01"], "concurrency": 0},
                 {"release": "v2", "devices": ["d01"], "canary": "1"},
                 {"release": "v2", "devices": "d01"}, []):
        assert client.post("/api/rollouts", json=body).status_code == 400, body


def test_releases_are_immutable_sets_and_devices_show_which_they_run(app, fleet, client):
    ext, _ = fleet
    listing = {r["name"]: r for r in client.get("/api/releases").json["releases"]}
    assert listing["v2"]["devices"] == 1 and listing["v2"]["delete_extra"] is False
    r = client.post("/api/releases", json={"name": "v2", "files": {"main.py": "main.py"}})
    assert r.status_code == 400 and "releases never change" in r.json["message"]
    for files, message in (({"boot.py": "main.py"}, "safe-boot code"),
                           ({"settings.json": "main.py"}, "settings"),
                           ({"../x.py": "main.py"}, "'..'"),
                           ({"main.py": "nothing-stored"}, "no stored file")):
        r = client.post("/api/releases", json={"name": "v3", "files": files})
        assert r.status_code == 400 and message in r.json["message"], (files, r.json)
    with app.app_context():
        sha = ext.releases.get(get_db(), "v2").files[0][1].sha256
    r = client.delete("/api/files/%s" % sha)
    assert (r.status_code, r.json["error"]) == (409, "in_use")
    assert client.get("/api/releases/v2").json["name"] == "v2"


def test_a_folder_upload_becomes_a_release_with_its_paths(app, fleet, client):
    data = {"name": "lamp-3", "delete_extra": "on",
            "file": [(io.BytesIO(b"print(3)\n"), "lamp/main.py"),
                     (io.BytesIO(b"Y = 2\n"), "lamp/lib/y.py")]}
    r = client.post("/api/releases", data=data, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    assert [f["target"] for f in r.json["files"]] == ["lib/y.py", "main.py"]
    assert r.json["delete_extra"] is True
    bad = {"name": "x", "file": [(io.BytesIO(b"1"), "a/b/c/d.py")]}
    r = client.post("/api/releases", data=bad, content_type="multipart/form-data")
    assert r.status_code == 400 and "one sub-folder at most" in r.json["message"]
    assert client.get("/api/releases/x").status_code == 404


def test_delete_extra_deletes_what_the_release_does_not_hold_but_never_the_runtime(app, fleet):
    ext, fake = fleet
    main = store_file(app, b"print('v3')\n", "main.py")
    beat(app, "d01", files={"main.py": "0" * 40, "old.py": "1" * 40, "loader.py": "2" * 40,
                            "safeboot.py": "3" * 40, "lib/x.py": "4" * 40})
    with app.app_context():
        ext.releases.create(get_db(), "v3", [("main.py", main)], delete_extra=True)
        rid = ext.rollouts.create(get_db(), "v3", ["d01"], Settings(canary=0))
    advance(app, ext, rid)
    assert fake.made == [("d01", ["main.py"], ["lib/x.py", "old.py"])]


def test_folder_targets_drop_the_common_folder_only():
    assert folder_targets(["a/main.py", "a/lib/x.py"]) == ["main.py", "lib/x.py"]
    assert folder_targets(["main.py", "lib/x.py"]) == ["main.py", "lib/x.py"]
    for bad in (["a/.hidden"], ["/abs/path.py"], ["C:\\x\\y.py"], ["dir//app.py"],
                ["../../etc/passwd"], ["a/./b.py"]):
        with pytest.raises(ValueError):
            folder_targets(bad)


def test_release_names_follow_rules(app, fleet):
    ext, _ = fleet
    with app.app_context(), pytest.raises(ReleaseError):
        ext.releases.create(get_db(), "../x", [])


def test_a_rollout_refuses_devices_never_heard_from_or_in_another_rollout(app, fleet, client):
    r = client.post("/api/rollouts", json={"release": "v2", "devices": ["d01", "typo-1"]})
    assert r.status_code == 400 and "never heard from: typo-1" in r.json["message"]
    first = client.post("/api/rollouts", json={"release": "v2", "devices": ["d01", "d02"]})
    assert first.status_code == 202
    r = client.post("/api/rollouts", json={"release": "v2", "devices": ["d02", "d03"]})
    assert r.status_code == 400 and r.json["message"] == (
        "already in a rollout that has not ended: d02 (rollout %d); cancel it or leave them "
        "out" % first.json["id"])
    client.post("/api/rollouts/%d/cancel" % first.json["id"])
    assert client.post("/api/rollouts", json={"release": "v2", "devices": ["d02", "d03"]}
                       ).status_code == 202


def test_the_share_counts_the_pushes_going_so_one_early_rollback_is_not_100_percent(app, fleet):
    ext, fake = fleet
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", ["d%02d" % i for i in range(6)], Settings(
            canary=0, wave_size=5, concurrency=5, threshold=0.4))
    shown = advance(app, ext, rid)
    with app.app_context():  # one rolls back at once; four are still on probation
        d = next(d for d in shown["devices"] if d["device"] == "d00")
        push_store.finish(get_db(), d["push_id"], State.FAILED, "rolled back", "boot 2")
    shown = advance(app, ext, rid)
    assert shown["state"] == "running" and shown["failure_share"] == 0.2
    end_pushes(app, shown, fail={"d01", "d02"})
    shown = advance(app, ext, rid)
    assert shown["state"] == "stopped" and shown["reason"].startswith(
        "3 of the 5 devices pushed to failed (60 %")
    with app.app_context():
        ext.rollouts.resume(get_db(), rid)
    shown = advance(app, ext, rid)
    end_pushes(app, shown)
    shown = advance(app, ext, rid)
    assert (shown["state"], shown["reason"]) == ("done", "3 done, 3 failed")


def test_a_canary_that_never_answers_stops_it_and_a_resume_goes_on_past_a_failed_one(app, fleet):
    ext, fake = fleet
    with app.app_context():
        rid = ext.rollouts.create(get_db(), "v2", ["d06", "d07"], Settings(canary=1,
                                                                          offline_wait=5))
    beat(app, "d06", online=False, reason="lost")  # the canary goes away before its turn
    shown = advance(app, ext, rid)
    assert [d["state"] for d in shown["devices"]] == ["waiting", "pending"]
    with app.app_context():
        ext.rollouts.advance(get_db(), rid, now=time.time() + 6)
        shown = ext.rollouts.describe(get_db(), rid)
    assert (shown["state"], shown["reason"]) == ("stopped", "the canary never answered: "
                                                            "still offline after the wait")
    with app.app_context():  # a person goes on anyway
        ext.rollouts.resume(get_db(), rid)
    shown = advance(app, ext, rid)
    assert shown["state"] == "running" and [d["state"] for d in shown["devices"]] == [
        "offline", "pushing"]


def test_a_device_too_far_from_the_release_fails_with_what_to_do(app, fleet):
    ext, fake = fleet
    main = store_file(app, b"print('v4')\n", "main.py")
    beat(app, "d08", files={"x%d.py" % i: "%040d" % i for i in range(9)})
    with app.app_context():
        ext.releases.create(get_db(), "v4", [("main.py", main)], delete_extra=True)
        rid = ext.rollouts.create(get_db(), "v4", ["d08"], Settings(canary=0))
    shown = advance(app, ext, rid)
    assert shown["devices"][0]["state"] == "failed" and fake.made == []
    assert shown["devices"][0]["detail"] == (
        "needs 10 changes (files written and deleted) to run v4, more than one update carries "
        "(8): bring it closer by hand first")


def test_a_device_runs_the_release_it_holds_most_of_not_a_newer_part_of_it(app, fleet):
    ext, _ = fleet
    with app.app_context():
        v2 = ext.releases.get(get_db(), "v2")
        ext.releases.create(get_db(), "util-only", [("lib/util.py", dict(v2.files)["lib/util.py"])])
        running = ext.releases.matcher(get_db())
    assert running(v2.wants) == "v2"  # it holds util-only's file too: v2 says more
    assert running({"lib/util.py": v2.wants["lib/util.py"]}) == "util-only"
    assert running({}) == "modified"
