"""The rollout service: makes rollouts, and in the server advances each running one on one
thread, from what the database says alone (so a restarted server carries on where it was).

Each round (every second, and as soon as a push ends) a rollout not ended:
1. follows its pushes: a push that ended makes its device done or failed (a push its server
   stopped puts the device back in line);
2. gives up on devices offline for longer than `offline_wait`; when every device is done,
   failed, skipped, offline or cancelled it ends: done, or failed when more than
   `threshold` of the devices pushed to since the last resume failed;
3. (running) stops by itself when its canary failed, or when more than `threshold` of the
   devices pushed to (done, failed or pushing) since its start or last resume failed,
   leaving the rest untouched;
4. takes the lowest wave with devices still pending or pushing (a device offline at its turn
   waits without holding its wave up); past the canary wave it goes on by itself
   (`auto_continue`) or waits for a person's go;
5. starts pushes, at most `concurrency` at once: a device that runs the release already is
   skipped, one that is offline waits, the others get only the files that differ
   (Release.changes), in one bundle through PushService.
"""
import contextlib
import logging
import math
import threading
import time

from ..db import connect
from ..manifest import MAX_FILES
from ..push import store as push_store
from ..push.plan import PushRejected
from ..push.states import CANCELLED, FINAL as FINAL_PUSH, SERVER_STOPPED, State
from . import store
from .states import FINAL_PHASES, FINAL_STEPS, RESUMABLE, Phase, Step
from .store import Settings

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
MAX_DEVICES = 5000


class RolloutRejected(Exception):
    """The rollout cannot be made, or changed as asked; the message says why."""


def _some(names, shown=5):
    """"a, b, c and 7 more": a list for a message."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (" and %d more" % more if more > 0 else "")


def waves_of(devices, settings):
    """[[device, ...], ...]: the canary wave (if any), then waves of `wave_size`."""
    devices = list(devices)
    canary = devices[:settings.canary]
    rest = devices[settings.canary:]
    waves = [canary] if canary else []
    waves += [rest[i:i + settings.wave_size] for i in range(0, len(rest), settings.wave_size)]
    return waves


def check_settings(settings):
    """The settings, or RolloutRejected naming the one out of bounds."""
    s = settings
    if not 0 <= s.canary <= 100:
        raise RolloutRejected("canary is 0 to 100 devices")
    if not 1 <= s.wave_size <= MAX_DEVICES:
        raise RolloutRejected("wave_size is 1 to %d devices" % MAX_DEVICES)
    if not 1 <= s.concurrency <= 64:
        raise RolloutRejected("concurrency is 1 to 64 pushes at once")
    if not (0 <= s.threshold <= 1) or math.isnan(s.threshold):
        raise RolloutRejected("threshold is a share of failed devices from 0 to 1 (0 % to "
                              "100 %)")
    if not (0 <= s.offline_wait <= 30 * 24 * 3600):
        raise RolloutRejected("offline_wait is 0 to 30 days, in seconds")
    return s


class RolloutService:
    """Made with the app: create, pause, resume and cancel work in any process (they only
    write the database). start() (the server) runs the thread that advances rollouts; it
    uses the registry, the releases and the push service."""

    def __init__(self, app, registry, releases, pushes):
        self.app, self.config = app, app.config
        self.registry, self.releases, self.pushes = registry, releases, pushes
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = None

    # -- making and steering rollouts -------------------------------------------------------

    def create(self, db, release_name, devices, settings=Settings()):
        """A new running rollout of release `release_name` to `devices` (names of devices
        heard from, in no other rollout that has not ended). Devices that run the release
        already by their last heartbeat are skipped; the others go in waves, online ones
        first (the canary is a device that can answer). Returns its id; RolloutRejected says
        why not."""
        check_settings(settings)
        release = self.releases.get(db, release_name)
        if release is None:
            raise RolloutRejected("no release named %s" % release_name)
        devices = list(dict.fromkeys(devices))
        if not devices:
            raise RolloutRejected("no devices to roll out to: name devices or tags, or pick "
                                  "every online device")
        if len(devices) > MAX_DEVICES:
            raise RolloutRejected("a rollout takes at most %d devices" % MAX_DEVICES)
        known = {d.name: d for d in self.registry.all(db)}
        unknown = [n for n in devices if n not in known]
        if unknown:
            raise RolloutRejected("never heard from: %s (a device appears with its first "
                                  "heartbeat)" % _some(unknown))
        busy = store.busy_devices(db, devices)
        if busy:
            raise RolloutRejected("already in a rollout that has not ended: %s; cancel it or "
                                  "leave them out" % _some(
                                      ["%s (rollout %d)" % (n, r) for n, r in busy]))
        skipped = [n for n in devices if n in known and release.runs_on(known[n].files)]
        todo = [n for n in devices if n not in skipped]
        todo.sort(key=lambda n: not (n in known and known[n].online))  # stable: order kept
        rollout_id = store.insert(db, release.id, settings, waves_of(todo, settings), skipped)
        log.info("rollout %d of %s: %d device(s) to do, %d skipped", rollout_id, release.name,
                 len(todo), len(skipped))
        self._wake.set()
        return rollout_id

    def pause(self, db, rollout_id):
        """A running rollout starts no more pushes (those going finish)."""
        self._exists(db, rollout_id)
        if not store.set_phase(db, rollout_id, Phase.PAUSED, "paused by a person",
                               expect=(Phase.RUNNING,)):
            raise RolloutRejected("rollout %d is not running" % rollout_id)

    def resume(self, db, rollout_id):
        """Go on with a paused or stopped rollout, or past a healthy canary (a person's go).
        After a stop the failure share counts again from here (and a failed canary is let
        be: the person decided)."""
        row = self._exists(db, rollout_id)
        extra = {}
        if row["state"] == Phase.WAITING_GO:
            extra["canary_passed"] = 1
        elif row["state"] == Phase.STOPPED:  # a person goes on despite the failures so far
            counts = self._counts(store.devices(db, rollout_id))
            extra = {"base_done": counts[Step.DONE], "base_failed": counts[Step.FAILED],
                     "canary_passed": 1}
        if not store.set_phase(db, rollout_id, Phase.RUNNING, None, expect=RESUMABLE, **extra):
            raise RolloutRejected("rollout %d is %s: only a paused, stopped or waiting one "
                                  "resumes" % (rollout_id, row["state"]))
        self._wake.set()

    def cancel(self, db, rollout_id):
        """End a rollout: devices not pushed yet are left as they are; pushes going are
        cancelled where the device has not got the whole update (it decides those)."""
        row = self._exists(db, rollout_id)
        if not store.set_phase(db, rollout_id, Phase.CANCELLED, "cancelled by a person",
                               expect=[p for p in Phase if p not in FINAL_PHASES]):
            raise RolloutRejected("rollout %d has ended (%s)" % (rollout_id, row["state"]))
        store.end_pending(db, rollout_id, Step.CANCELLED, "the rollout was cancelled")
        self._wake.set()  # the server's thread cancels its pushes (_follow_pushes)

    def _exists(self, db, rollout_id):
        row = store.head(db, rollout_id)
        if row is None:
            raise LookupError("no rollout %d" % rollout_id)
        return row

    # -- what a rollout looks like ----------------------------------------------------------

    def describe(self, db, rollout_id):
        """The rollout as the API and the page show it: its settings, phase, release, the
        count per step, the failure share against the threshold, and each device (wave, step,
        push, detail). None when there is no such rollout."""
        row = store.head(db, rollout_id)
        if row is None:
            return None
        rows = store.devices(db, rollout_id)
        release = self.releases.get(db, row["release_id"])
        counts = self._counts(rows)
        return dict(
            self._summary(row, counts), release=release.name if release else None,
            devices=[{"device": d["device"], "wave": d["wave"], "state": d["state"],
                      "push_id": d["push_id"], "detail": d["detail"],
                      "updated_at": d["updated_at"]} for d in rows])

    def listing(self, db):
        """The newest rollouts, each as describe() without its devices."""
        return [dict(self._summary(row, self._counts_of(counts)), release=row["release"])
                for row, counts in store.listing(db)]

    @staticmethod
    def _share(row, counts):
        """(failed, tried): the devices failed and pushed to (done, failed, or pushing now)
        since the start or the last resume after a stop. Pushes going count: a rollback
        comes seconds after a push, a confirmation only after the probation, so a share of
        the decided alone would read the first failure of a wave as 100 %."""
        failed = counts[Step.FAILED] - row["base_failed"]
        return failed, failed + counts[Step.DONE] - row["base_done"] + counts[Step.PUSHING]

    def _summary(self, row, counts):
        failed, tried = self._share(row, counts)
        total = sum(counts.values())
        return {
            "id": row["id"], "state": row["state"], "reason": row["reason"],
            "settings": {"canary": row["canary"], "wave_size": row["wave_size"],
                         "concurrency": row["concurrency"], "threshold": row["threshold"],
                         "auto_continue": bool(row["auto_continue"]),
                         "offline_wait": row["offline_wait"]},
            "counts": {s.value: counts[s] for s in Step}, "total": total,
            "finished": sum(counts[s] for s in FINAL_STEPS),
            "failure_share": failed / tried if tried > 0 else 0.0,
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "finished_at": row["finished_at"]}

    @staticmethod
    def _counts(rows):
        counts = {s: 0 for s in Step}
        for d in rows:
            counts[Step(d["state"])] += 1
        return counts

    @staticmethod
    def _counts_of(by_state):
        return {s: by_state.get(s.value, 0) for s in Step}

    # -- the server's thread -----------------------------------------------------------------

    def start(self):
        """Advance rollouts on a thread of this process from now on (the server's)."""
        self._stopping.clear()
        self.pushes.on_end(self._wake.set)
        self._thread = threading.Thread(target=self._loop, name="rollouts", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _loop(self):
        db = None
        while not self._stopping.is_set():
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                db = db or connect(self.config["OTA_DATABASE"])
                with self.app.app_context():
                    for rollout_id in store.to_follow(db):
                        self._advance_one(db, rollout_id)
            except Exception:  # noqa: BLE001 (a busy or full database: the next round tries)
                log.warning("could not advance the rollouts", exc_info=True)
                db = None

    def _advance_one(self, db, rollout_id):
        try:
            self.advance(db, rollout_id)
        except Exception:  # noqa: BLE001 (one bad rollout must not stop the others)
            log.exception("rollout %d could not advance", rollout_id)

    def advance(self, db, rollout_id, now=None):
        """One round of a rollout (see the module's docstring)."""
        now = time.time() if now is None else now
        row = store.head(db, rollout_id)
        rows = store.devices(db, rollout_id)
        changed = self._follow_pushes(db, row, rows)
        if row["state"] in FINAL_PHASES:
            return
        for d in rows:
            if d["state"] == Step.WAITING and now - d["waiting_since"] > row["offline_wait"]:
                store.set_step(db, rollout_id, d["device"], Step.OFFLINE,
                               "still offline after %ds" % row["offline_wait"])
                changed = True
        if changed:  # read again only what moved
            rows = store.devices(db, rollout_id)
        if all(d["state"] in FINAL_STEPS for d in rows):
            self._finish(db, row, self._counts(rows))  # nothing left to stop or go on with
            return
        if row["state"] != Phase.RUNNING:
            return
        if row["canary"] and not row["canary_passed"] and self._canary_failed(db, row, rows):
            return
        if self._over_threshold(db, row, self._counts(rows)):
            return
        wave = min((d["wave"] for d in rows if d["state"] in (Step.PENDING, Step.PUSHING)),
                   default=None)
        if wave is not None and wave > 0 and row["canary"] and not row["canary_passed"]:
            if not self._past_canary(db, row, [d for d in rows if d["wave"] == 0]):
                return
        self._start_pushes(db, row, rows, wave, now)

    def _follow_pushes(self, db, row, rows):
        """A device whose push ended is done or failed; the pushes of a cancelled rollout
        are cancelled (PushService.cancel: not those the device has whole). Returns whether
        a device moved."""
        rollout_id, moved = row["id"], False
        for d in rows:
            if d["state"] != Step.PUSHING:
                continue
            push = push_store.head(db, d["push_id"])
            if push is not None and row["state"] == Phase.CANCELLED and \
                    push["state"] not in FINAL_PUSH:
                with contextlib.suppress(PushRejected):  # delivered: the device decides
                    self.pushes.cancel(d["push_id"], CANCELLED, "the rollout was cancelled")
                push = push_store.head(db, d["push_id"])
            if push is None or push["state"] not in FINAL_PUSH:
                continue
            moved = True
            if push["state"] == State.FAILED and row["state"] == Phase.CANCELLED and \
                    push["reason"] == CANCELLED:
                store.set_step(db, rollout_id, d["device"], Step.CANCELLED,
                               "the rollout was cancelled during push %d" % d["push_id"])
            elif push["state"] == State.FAILED and push["reason"] == SERVER_STOPPED:
                # not the device's failure: its turn comes again (a restart carries on)
                if row["state"] == Phase.CANCELLED:
                    store.set_step(db, rollout_id, d["device"], Step.CANCELLED,
                                   "the rollout was cancelled")
                else:
                    store.set_step(db, rollout_id, d["device"], Step.PENDING, "the server "
                                   "stopped during push %d: it goes again" % d["push_id"])
            elif push["state"] == State.FAILED:
                store.set_step(db, rollout_id, d["device"], Step.FAILED, "%s: %s" % (
                    push["reason"], push["detail"]) if push["detail"] else push["reason"])
            else:
                store.set_step(db, rollout_id, d["device"], Step.DONE, push["detail"] or (
                    "the device does not confirm" if push["state"] == State.UNCONFIRMED
                    else None))
        return moved

    def _over_threshold(self, db, row, counts):
        failed, tried = self._share(row, counts)
        if tried <= 0 or failed / tried <= row["threshold"]:
            return False
        reason = ("%d of the %d devices pushed to failed (%.0f %%, over the threshold of "
                  "%.0f %%)" % (failed, tried, 100.0 * failed / tried, 100.0 * row["threshold"]))
        if store.set_phase(db, row["id"], Phase.STOPPED, reason, expect=(Phase.RUNNING,)):
            log.warning("rollout %d stopped: %s", row["id"], reason)
        return True

    def _canary_failed(self, db, row, rows):
        """Stop the rollout, saying which and why, when a device of its canary failed."""
        failed = [d for d in rows if d["wave"] == 0 and d["state"] == Step.FAILED]
        if not failed:
            return False
        said = "; ".join("%s: %s" % (d["device"], d["detail"]) for d in failed[:3])
        store.set_phase(db, row["id"], Phase.STOPPED, "the canary failed (%s)" % said,
                        expect=(Phase.RUNNING,))
        return True

    def _past_canary(self, db, row, canary):
        """Whether the rollout goes on past its canary wave now: healthy means one came back
        done (or it ran the release already); a failed one stopped it (_canary_failed)."""
        if not any(d["state"] == Step.DONE for d in canary):
            if any(d["state"] == Step.WAITING for d in canary):
                return False  # the canary is offline: it has to answer first
            if any(d["state"] == Step.OFFLINE for d in canary):
                store.set_phase(db, row["id"], Phase.STOPPED, "the canary never answered: "
                                "still offline after the wait", expect=(Phase.RUNNING,))
                return False
        if row["auto_continue"]:
            store.set_phase(db, row["id"], Phase.RUNNING, None, canary_passed=1)
            return True
        store.set_phase(db, row["id"], Phase.WAITING_GO, "the canary came back healthy: "
                        "waiting for a go", expect=(Phase.RUNNING,))
        return False

    def _finish(self, db, row, counts):
        """Every device had its turn: done, or failed when more than the threshold of those
        pushed to since the last resume failed (there was nothing left to stop)."""
        said = ", ".join("%d %s" % (counts[s], s.value) for s in Step if counts[s])
        failed, tried = self._share(row, counts)
        phase = Phase.FAILED if tried and failed / tried > row["threshold"] else Phase.DONE
        if store.set_phase(db, row["id"], phase, said,
                           expect=[p for p in Phase if p not in FINAL_PHASES]):
            log.info("rollout %d %s: %s", row["id"], phase.value, said)

    def _start_pushes(self, db, row, rows, wave, now):
        release = self.releases.get(db, row["release_id"])
        slots = row["concurrency"] - sum(d["state"] == Step.PUSHING for d in rows)
        # the devices waited for come first: they are the oldest turns
        turns = [d for d in rows if d["state"] == Step.WAITING] + \
                [d for d in rows if d["state"] == Step.PENDING and d["wave"] == wave]
        for d in turns:
            if slots <= 0:  # the others' turn comes with the next free slot: no work now
                break
            device = self.registry.get(db, d["device"])
            if device is None or not device.online:
                if d["state"] == Step.PENDING:
                    store.set_step(db, row["id"], d["device"], Step.WAITING,
                                   "offline: pushed when it comes back", waiting_since=now)
                continue
            items = release.changes(device.files)
            if not items:  # done, if a push of this rollout got there after all
                store.set_step(db, row["id"], d["device"], *(
                    (Step.DONE, "runs %s (push %d)" % (release.name, d["push_id"]))
                    if d["push_id"] else (Step.SKIPPED, "runs %s already" % release.name)))
                continue
            if len(items) > MAX_FILES:
                store.set_step(db, row["id"], d["device"], Step.FAILED, (
                    "needs %d changes (files written and deleted) to run %s, more than one "
                    "update carries (%d): bring it closer by hand first" % (
                        len(items), release.name, MAX_FILES)))
                continue
            try:
                push_id = self.pushes.create(db, d["device"], [i for i in items if not i.delete],
                                             delete=[i.target for i in items if i.delete])
            except PushRejected as exc:
                store.set_step(db, row["id"], d["device"], Step.FAILED, str(exc))
                continue
            store.set_step(db, row["id"], d["device"], Step.PUSHING, None, push_id=push_id)
            slots -= 1
