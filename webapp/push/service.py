"""The push service: makes pushes, queues them one per device, runs each on its own thread
(push/run.py) and routes the devices' messages to the run they are about.

One push per device: within this process a FIFO per device; across processes sharing the
database (the server, CLI runs) a lease on the device (push/store.py), renewed here every
few seconds while its run lives.
"""
import collections
import contextlib
import logging
import os
import secrets
import socket
import threading
import time

from ..db import connect, get_db
from ..manifest import Item, check_targets
from ..names import check_device_name, check_target
from . import store
from .plan import Planner, PushRejected
from .run import PushFailed, PushRun
from .states import CANCELLED, DEVICE_DECIDES, FINAL, SERVER_STOPPED, Note, State

log = logging.getLogger(__name__)

_TOO_LATE = ("push %d is past cancelling: the device has the whole update and confirms or "
             "rolls it back by itself")


class NotRunning(Exception):
    """The push service is not running in this process (services.start_services)."""


def process_id():
    """This process as a push owner: "host:pid:nonce" (the nonce tells a restarted process
    that got the same pid from its earlier life)."""
    return "%s:%d:%s" % (socket.gethostname(), os.getpid(), secrets.token_hex(4))


class PushService:
    """Made with the app, so that a push is checked the same way everywhere; it runs pushes
    once started (start(bus), by services.Services). Public: create, create_many, retry,
    resume, wait, cancel, stop, and the two message hooks for the bus. Runs use
    config, bus, registry, store and owner_gone()."""

    def __init__(self, app, registry, store_):
        self.app, self.config = app, app.config
        self.registry, self.store = registry, store_
        self.bus = None
        self.owner = None  # process_id(), once started
        self._lock = threading.Condition()
        self._runs = {}           # push id -> PushRun, until it ends
        self._active = {}         # device -> the PushRun that has its turn here
        self._queues = {}         # device -> push ids in order: one push at a time, FIFO
        self._threads = []
        self._stopping = threading.Event()
        self._unrecorded = set()  # ids whose run ended here without recording the end
        self._keeper = None
        self._adopt_orphans = False
        self._on_end = []  # callables, called (no arguments) when a run here ends
        self.planner = Planner(store_, registry)

    # -- making pushes -----------------------------------------------------------------------

    def create(self, db, device, files, name=None, force=False, delete=(), mpy=False):
        """Queue a push to `device`; returns its id.

        `files` is a list of stored files, references to them (a hash prefix or a name), or
        manifest.Items (a stored file under its name on the device):
        several go as one bundle, each under its own name; `name` renames a single file on
        the device; `delete` names files the same update deletes there (journaled like a
        replace: all or none); `mpy` sends each .py (but boot.py and main.py) as NAME.mpy,
        compiled here for the format the device reports. PushRejected says why a push
        cannot be made, checked against the device's last heartbeat where there is one;
        every .py is compiled here first, so a syntax error is one of the reasons.
        """
        return self.create_many(db, [device], files, name, force, delete, mpy)[0]

    def create_many(self, db, devices, files, name=None, force=False, delete=(), mpy=False):
        """The same push to each of `devices`, all or none: every one is checked before any
        is queued. Returns the ids in the order of `devices`.

        The checks, in order: the request's own names (PushRejected), whether pushes run
        in this process (NotRunning), then the stored files and what each device reported
        (PushRejected)."""
        if not isinstance(files, (list, tuple)):
            raise TypeError("files is a list")
        try:
            for device in devices:
                check_device_name(device)
            if name is not None:
                check_target(name)
            if delete:
                check_targets(list(delete), force, set(delete))
        except ValueError as exc:
            raise PushRejected(str(exc)) from None
        if self.bus is None:
            raise NotRunning("the push service is not running in this process")
        plans = [self.planner.plan(db, device, files, name, force, delete, mpy)
                 for device in devices]
        if self._stopping.is_set():
            raise PushRejected("the server is shutting down")
        ids = []
        for device, items in plans:
            push_id = store.insert(db, device, items, force, self.owner)
            self._start(PushRun(self, push_id, device, items, force))
            ids.append(push_id)
        return ids

    def retry(self, db, push_id):
        """The same files to the same device under the same names, as a new push."""
        row = store.head(db, push_id)
        if row is None:
            raise PushRejected("no push %d" % push_id)
        items = self._items(db, push_id)
        if items is None:
            raise PushRejected("a file of push %d was deleted; upload it again" % push_id)
        files = [i for i in items if not i.delete]
        deletes = [i.target for i in items if i.delete]
        renamed = len(files) == 1 and files[0].target != files[0].file.name
        return self.create(db, row["device"], [i.file for i in files],
                           files[0].target if renamed else None, row["force"], deletes)

    def resume(self, db, why="the server restarted", reason=SERVER_STOPPED):
        """Adopt the pushes whose process is gone (an earlier server at start; a CLI run
        killed mid-way, while the server runs: see _keep_leases). Queued or waiting ones go
        on; one cut off mid-way is reconciled with what its device reports
        (PushRun._reconcile). A push whose process still lives is left to it. Returns the
        ids adopted; a push that cannot be adopted ends failed, and never stops the others.
        `why` and `reason` say, in its timeline, what cut a push off and how it failed if the
        device kept its old files."""
        adopted = []
        for row in store.unfinished(db):
            if row["id"] in self._runs or not self.owner_gone(row["owner"]):
                continue
            try:
                if store.adopt(db, row["id"], self.owner, row["owner"]):
                    self._adopt(db, row, why, reason)
                    adopted.append(row["id"])
            except Exception as exc:  # noqa: BLE001 (one bad row must not stop the start)
                log.exception("push %d could not be resumed", row["id"])
                with contextlib.suppress(Exception):
                    store.finish(db, row["id"], State.FAILED, "server error",
                                 "could not be resumed: %r" % exc)
        if self._adopt_orphans:
            self._start_keeper()  # from now on, it adopts those of processes that end
        return adopted

    def _adopt(self, db, row, why, reason):
        items = self._items(db, row["id"])
        if items is None:
            store.finish(db, row["id"], State.FAILED, SERVER_STOPPED,
                         "%s during the push; a file of it is gone" % why)
            return
        cut_off = row["state"] not in (State.QUEUED, State.WAITING)
        if cut_off:
            store.note(db, row["id"], Note.RECONCILING, "%s during the push: waiting for the "
                       "device to say what it has" % why)
        else:
            store.note(db, row["id"], Note.RESUMED, why)
        self._start(PushRun(self, row["id"], row["device"], items, bool(row["force"]),
                            reconcile=(why, reason) if cut_off else None,
                            token=row["token"] if cut_off else None))

    def _items(self, db, push_id):
        items = []
        for sha256, target in store.files_of(db, push_id):
            stored = self.store.get(db, sha256) if sha256 else None
            if sha256 and stored is None:
                return None
            items.append(Item(stored, target))
        return items

    # -- following and stopping pushes -------------------------------------------------------

    def wait(self, push_id, timeout=None):
        """Block until the push's run here ends (or timeout); True if it ended."""
        run = self._runs.get(push_id)
        return run.finished.wait(timeout) if run else True

    def cancel(self, push_id, reason=CANCELLED, detail="cancelled by the user"):
        """End a push that is not final with `reason`, whichever process runs it; False if
        it has ended (call in an app context).

        Run here: at once. Run by another live process (a CLI run): asked through the
        database, and that process ends it within a second or so. Run by nobody (its
        process is gone, or its run here could not record its end): ended in the database.
        """
        if self.bus is None:
            raise NotRunning("the push service is not running in this process")
        run = self._runs.get(push_id)
        if run is not None and run.delivered:
            raise PushRejected(_TOO_LATE % push_id)
        if run is not None:
            run.cancel(reason, detail)
            with self._lock:
                self._lock.notify_all()  # wakes it if it waits for its turn
            return True
        db = get_db()
        row = store.head(db, push_id)
        if row is None or row["state"] in FINAL:
            return False
        if row["state"] in DEVICE_DECIDES:
            raise PushRejected(_TOO_LATE % push_id)
        if push_id in self._unrecorded or self.owner_gone(row["owner"]) or \
                row["owner"] == self.owner:
            store.finish(db, push_id, State.FAILED, reason, detail)
            self._unrecorded.discard(push_id)
            return True
        return store.request_cancel(db, push_id, detail)

    def start(self, bus, adopt=False):
        """Run pushes from now on, talking to devices over `bus` (bus.Bus). `adopt` (the
        server): every few seconds, take over the pushes of processes that are gone (a CLI
        run killed mid-way), as resume() does at start."""
        self.bus, self.owner, self._adopt_orphans = bus, process_id(), adopt
        self._stopping.clear()
        return self

    @property
    def stopping(self):
        """Whether this process is stopping its runs (stop())."""
        return self._stopping.is_set()

    def stop(self):
        """Stop every run of this process: a delivered push is left as it is (the device
        decides; the next server reconciles it), any other ends `server stopped`."""
        self._stopping.set()
        for push_id, run in list(self._runs.items()):
            if run.delivered:
                run.abandon()
            else:
                self.cancel(push_id, SERVER_STOPPED, "the server shut down during the push")
        for thread in self._threads:
            thread.join(5)

    def on_end(self, callback):
        """Call `callback()` whenever a push run by this process ends (rollouts go on at
        once instead of at their next round)."""
        self._on_end.append(callback)

    def owner_gone(self, owner):
        """Whether the process that owned a push is known to be gone: no owner, an earlier
        life of this process, or a process of this host that no longer exists. Another
        host's process cannot be seen from here: its leases run out instead."""
        if not owner:
            return True
        if owner == self.owner:
            return False
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        if int(pid) == os.getpid():
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass  # it exists (another user's): alive
        return False

    # -- messages from devices (paho's thread, inside an app context) -----------------------

    def on_device_status(self, device, status):
        """An ID/ota/status (a dict: trigger.parse_device_status) for the run that has the
        device's turn here, if any."""
        run = self._active.get(device)
        if run is not None:  # else a push this process does not run (another one does)
            run.post("device", status)

    def on_heartbeat(self, device, heartbeat):
        run = self._active.get(device)
        if run is not None:
            run.post("heartbeat", heartbeat)

    # -- threads -------------------------------------------------------------------------------

    def _start(self, run):
        with self._lock:
            self._runs[run.id] = run
            self._queues.setdefault(run.device, collections.deque()).append(run.id)
        self._start_keeper()
        thread = threading.Thread(target=self._thread, args=(run,), name="push-%d" % run.id,
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _thread(self, run):
        with self.app.app_context():
            try:
                with self._turn(run):
                    self._active[run.device] = run
                    try:
                        run.run(get_db())
                    finally:
                        self._active.pop(run.device, None)
            except PushFailed as exc:  # cancelled before its turn
                run.fail(exc.reason, exc.detail, get_db())
            finally:
                if run.unrecorded:
                    self._unrecorded.add(run.id)
                with self._lock:
                    self._runs.pop(run.id, None)
                run.finished.set()
                log.info("push %d to %s ended", run.id, run.device)
                for callback in self._on_end:
                    callback()

    @contextlib.contextmanager
    def _turn(self, run):
        """Wait until every earlier push to the same device in this process has ended."""
        queue_ = self._queues[run.device]
        with self._lock:
            while queue_[0] != run.id:
                if run.cancelled:
                    queue_.remove(run.id)
                    self._lock.notify_all()
                    raise PushFailed(*run.cancelled)
                self._lock.wait(1.0)
        try:
            yield
        finally:
            with self._lock:
                queue_.popleft()
                self._lock.notify_all()

    def _start_keeper(self):
        with self._lock:
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep_leases, name="push-leases",
                                                daemon=True)
                self._keeper.start()

    def _keep_leases(self):
        """Every second, the cancels other processes asked for this process's pushes; every
        LEASE_SECONDS / 4, renew the device leases of the runs that live and (the server)
        adopt the pushes of processes that are gone."""
        db, renewed = None, 0.0
        while not self._stopping.wait(1.0):
            try:
                db = db or connect(self.config["OTA_DATABASE"])
                if time.monotonic() - renewed >= store.LEASE_SECONDS / 4:
                    if self._runs:
                        store.renew_leases(db, self.owner, list(self._runs))
                    if self._adopt_orphans:
                        with self.app.app_context():
                            self.resume(db, why="the process that ran it ended",
                                        reason="not applied")
                    renewed = time.monotonic()
                if not self._runs:
                    continue
                for push_id, detail in store.cancel_requests(db, self.owner):
                    run = self._runs.get(push_id)
                    if run is not None and not run.cancelled and not run.delivered:
                        self.cancel(push_id, CANCELLED, detail)
            except Exception:  # noqa: BLE001 (a busy or full database: the next round tries)
                log.warning("could not renew the device leases", exc_info=True)
                db = None
