"""Push orchestration: one thread per push walks it from queued to done, or to one named failure.

queued → trigger_sent → connected → transferring → sent → verified → rebooting → done
A device that sends no confirmation (the seed's firmware) ends in `unconfirmed` once it has
the bytes. Every step is a timestamped row in push_events: the push's timeline.
"""
import collections
import contextlib
import json
import logging
import queue
import secrets
import threading
import time

from .bus import BusError
from .db import get_db
from .names import check_device_name, check_target
from .netinfo import advertise_host
from .transfer import TransferError, TransferSession

log = logging.getLogger(__name__)

FINAL = ("done", "failed", "unconfirmed")
DEVICE_STATES = ("connecting", "connected", "verified", "rebooting", "failed")
_PROGRESS_EVERY = 0.25  # seconds between progress writes to the database
MAX_STATUS = 2048


class PushRejected(Exception):
    """The push cannot start: the file, the device or the name on the device is not valid."""


def build_trigger(host, port, target, sha1, size=None, token=None):
    """The `ID/OTA` payload: the seed's four fields, plus size and token in the extended form."""
    fields = [host, str(port), target, sha1]
    if token is not None:
        fields += [str(size), token]
    return "|".join(fields)


def parse_device_status(payload):
    """The dict of an `ID/ota/status` payload; ValueError says what is wrong with it."""
    if len(payload) > MAX_STATUS:
        raise ValueError("ota status of %d bytes is over %d" % (len(payload), MAX_STATUS))
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("ota status is not JSON (%s)" % exc) from None
    if not isinstance(doc, dict) or doc.get("state") not in DEVICE_STATES:
        raise ValueError("ota status has no known 'state'")
    for key in ("token", "reason", "detail", "file", "sha1"):
        if not isinstance(doc.get(key, ""), str):
            raise ValueError("ota status field %r is not a string" % key)
    return {
        "state": doc["state"], "token": doc.get("token", ""),
        "reason": doc.get("reason", "")[:64], "detail": doc.get("detail", "")[:300],
        "sha1": doc.get("sha1", ""),
    }


class _Run:
    """What one push thread needs to know while it runs."""

    def __init__(self, push_id, device, file, target):
        self.id, self.device, self.file, self.target = push_id, device, file, target
        self.token = None
        self.session = None
        self.events = queue.Queue()
        self.finished = threading.Event()
        self.last_progress = 0.0
        self.cancelled = None     # (reason, detail) once cancelled


class PushService:
    def __init__(self, app, bus, registry, store):
        self.app, self.bus, self.registry, self.store = app, bus, registry, store
        self._lock = threading.Condition()
        self._runs = {}           # push id -> _Run, until it ends
        self._active = {}         # device -> the _Run talking to it now
        self._queues = {}         # device -> push ids in order: one push at a time, FIFO
        self._threads = []
        self._stopping = False

    # -- starting and waiting --------------------------------------------------------------

    def create(self, db, device, file_ref, target=None):
        """Queue a push of a stored file to a device; returns the push id."""
        try:
            check_device_name(device)
            stored = self.store.find(db, file_ref) if isinstance(file_ref, str) else file_ref
            if stored is None:
                raise PushRejected("no stored file matches %r" % file_ref)
            target = check_target(target or stored.name)
        except ValueError as exc:
            raise PushRejected(str(exc)) from None
        if self._stopping:
            raise PushRejected("the server is shutting down")
        now = time.time()
        cur = db.execute(
            "INSERT INTO pushes (device, file_sha256, target, state, total, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?)", (device, stored.sha256, target, "queued", stored.size, now, now))
        push_id = cur.lastrowid
        db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
                   (push_id, now, "queued", "%s as %s" % (stored.name, target)))
        run = _Run(push_id, device, stored, target)
        with self._lock:
            self._runs[push_id] = run
            self._queues.setdefault(device, collections.deque()).append(push_id)
        thread = threading.Thread(target=self._thread, args=(run,), name="push-%d" % push_id,
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return push_id

    def retry(self, db, push_id):
        """Push the same file to the same device under the same name again."""
        row = db.execute("SELECT device, file_sha256, target FROM pushes WHERE id = ?",
                         (push_id,)).fetchone()
        if row is None:
            raise PushRejected("no push %d" % push_id)
        stored = self.store.get(db, row["file_sha256"])
        if stored is None:
            raise PushRejected("the file of push %d was deleted; upload it again" % push_id)
        return self.create(db, row["device"], stored, row["target"])

    def wait(self, push_id, timeout=None):
        """Block until the push ends (or timeout); True if it ended."""
        run = self._runs.get(push_id)
        return run.finished.wait(timeout) if run else True

    def cancel(self, push_id, reason, detail=""):
        """End a running push with `reason`, wherever it is."""
        run = self._runs.get(push_id)
        if run is not None:
            run.cancelled = (reason, detail)
            run.events.put(("cancel", (reason, detail)))
            with self._lock:
                self._lock.notify_all()  # wakes it if it waits for its turn
            if run.session:
                run.session.cancel(reason, detail)

    def detach(self, push_id):
        """Stop waiting for a sent push's confirmation: it ends `unconfirmed`."""
        run = self._runs.get(push_id)
        if run is not None:
            run.events.put(("detach", None))

    def stop(self):
        self._stopping = True
        for push_id in list(self._runs):
            self.cancel(push_id, "server stopped", "the server shut down during the push")
        for thread in self._threads:
            thread.join(5)

    # -- messages from devices (paho's thread, inside an app context) ---------------------

    def on_device_status(self, device, payload):
        run = self._active.get(device)
        if run is None:
            return  # a push this process does not own (another server or CLI runs it)
        try:
            status = parse_device_status(payload)
        except ValueError as exc:
            log.warning("push %d: ignoring a malformed status from %s: %s", run.id, device, exc)
            return
        if run.token and status["token"] != run.token:
            return  # about another push
        if status["state"] == "failed" and run.session is not None:
            run.session.cancel(status["reason"] or "failed", status["detail"])
        run.events.put(("device", status))

    def on_heartbeat(self, device, heartbeat):
        run = self._active.get(device)
        if run is not None:
            run.events.put(("heartbeat", heartbeat))

    # -- the push thread -------------------------------------------------------------------

    def _thread(self, run):
        with self.app.app_context():
            db = get_db()
            try:
                with self._turn(run):
                    self._active[run.device] = run
                    try:
                        self._walk(db, run)
                    finally:
                        self._active.pop(run.device, None)
            except TransferError as exc:
                self._finish(db, run, "failed", exc.reason, exc.detail)
            except BusError as exc:
                self._finish(db, run, "failed", "broker unreachable", str(exc))
            except Exception as exc:  # the thread's boundary: never leave a push hanging
                log.exception("push %d crashed", run.id)
                self._finish(db, run, "failed", "server error", repr(exc))
            finally:
                with self._lock:
                    self._runs.pop(run.id, None)
                run.finished.set()

    @contextlib.contextmanager
    def _turn(self, run):
        """Wait until every earlier push to the same device has ended."""
        queue_ = self._queues[run.device]
        with self._lock:
            while queue_[0] != run.id:
                if run.cancelled:
                    queue_.remove(run.id)
                    self._lock.notify_all()
                    raise TransferError(*run.cancelled)
                self._lock.wait(1.0)
        try:
            yield
        finally:
            with self._lock:
                queue_.popleft()
                self._lock.notify_all()

    def _walk(self, db, run):
        cfg = self.app.config
        device = self.registry.get(db, run.device)
        if device is not None and not device.online:
            raise TransferError("device offline", "last heard from %ds ago"
                                % (time.time() - device.last_seen))
        extended = device is not None and device.extended
        old_boot = device.boot if device else None
        run.token = secrets.token_hex(16) if extended else None
        form = "extended" if extended else "legacy"
        db.execute("UPDATE pushes SET form = ?, token = ? WHERE id = ?", (form, run.token, run.id))

        host = cfg["OTA_ADVERTISE_HOST"] or advertise_host(self.bus.local_address())
        path = self.store.path(run.file.sha256)
        with TransferSession(path, run.file.size, run.token, cfg["OTA_TRANSFER_BIND"],
                             cfg["OTA_TRANSFER_PORTS"], cfg["OTA_TRANSFER_TIMEOUT"],
                             on_event=lambda state, detail: self._on_transfer(db, run, state, detail)
                             ) as session:
            run.session = session
            trigger = build_trigger(host, session.port, run.target, run.file.sha1,
                                    run.file.size, run.token)
            self.bus.publish("%s/OTA" % run.device, trigger)
            self._step(db, run, "trigger_sent", "%s form, %s:%d" % (form, host, session.port))
            session.serve()
        run.session = None
        self._progress(db, run, run.file.size)
        self._step(db, run, "sent", "%d bytes" % run.file.size)

        if device is None:
            # Never heard from: the seed's firmware sends no heartbeat and no status.
            self._finish(db, run, "unconfirmed", None, "the device sends no confirmation")
            return
        self._confirm(db, run, old_boot)

    def _confirm(self, db, run, old_boot):
        """Wait for the device: verified, rebooting, then a heartbeat from the new boot."""
        deadline = time.monotonic() + self.app.config["OTA_CONFIRM_TIMEOUT"]
        seen = set()
        while True:
            try:
                kind, msg = run.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                last = max(seen, key=("verified", "rebooting").index) if seen else "sent"
                raise TransferError("timeout", "no confirmation within %gs after %s"
                                    % (self.app.config["OTA_CONFIRM_TIMEOUT"], last)) from None
            if kind == "cancel":
                raise TransferError(*msg)
            if kind == "detach":
                self._finish(db, run, "unconfirmed", None, "nobody waited for the confirmation")
                return
            if kind == "device":
                state = msg["state"]
                if state == "failed":
                    raise TransferError(msg["reason"] or "failed", msg["detail"])
                if state in ("verified", "rebooting") and state not in seen:
                    seen.add(state)
                    self._step(db, run, state, msg["sha1"] if state == "verified" else None)
            elif kind == "heartbeat" and msg.online and msg.boot != old_boot:
                have = msg.files.get(run.target)
                if have != run.file.sha1:
                    raise TransferError("not applied", "the device rebooted with %s %s"
                                        % (run.target, "sha1 %s" % have if have else "missing"))
                self._finish(db, run, "done", None, "back online, boot %s, sha1 %s"
                             % (msg.boot, have))
                return

    # -- recording -------------------------------------------------------------------------

    def _on_transfer(self, db, run, state, detail):
        if state == "connected":
            self._step(db, run, "connected", detail)
        elif state == "progress":
            if run.last_progress == 0.0:
                self._step(db, run, "transferring", "%d bytes" % run.file.size)
            if time.monotonic() - run.last_progress >= _PROGRESS_EVERY:
                self._progress(db, run, detail)

    def _progress(self, db, run, sent):
        run.last_progress = time.monotonic()
        db.execute("UPDATE pushes SET bytes_sent = ?, updated_at = ? WHERE id = ?",
                   (sent, time.time(), run.id))

    def _step(self, db, run, state, detail=None):
        now = time.time()
        db.execute("UPDATE pushes SET state = ?, updated_at = ? WHERE id = ?", (state, now, run.id))
        db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
                   (run.id, now, state, detail))
        log.info("push %d to %s: %s %s", run.id, run.device, state, detail or "")

    def _finish(self, db, run, state, reason, detail):
        now = time.time()
        db.execute("UPDATE pushes SET state = ?, reason = ?, detail = ?, updated_at = ?,"
                   " finished_at = ? WHERE id = ?", (state, reason, detail, now, now, run.id))
        text = "%s: %s" % (reason, detail) if reason and detail else (reason or detail)
        db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
                   (run.id, now, state, text))
        log.info("push %d to %s: %s %s", run.id, run.device, state, text or "")


def find_pushes(db, device=None, state=None, ids=(), since=None, limit=50):
    """Pushes newest first, each with its file's name and SHA-1 and its timeline."""
    where, args = [], []
    if device:
        where.append("p.device = ?")
        args.append(device)
    if state == "active":
        where.append("p.state NOT IN (%s)" % ",".join("?" * len(FINAL)))
        args += FINAL
    elif state:
        where.append("p.state = ?")
        args.append(state)
    if ids:
        where.append("p.id IN (%s)" % ",".join("?" * len(ids)))
        args += list(ids)
    if since is not None:
        where.append("p.updated_at > ?")
        args.append(since)
    rows = db.execute(
        "SELECT p.*, f.name AS file_name, f.sha1 AS file_sha1 FROM pushes p"
        " JOIN files f ON f.sha256 = p.file_sha256"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY p.id DESC LIMIT ?", args + [limit]).fetchall()
    pushes = []
    for row in rows:
        push = dict(row)
        push.pop("token")  # a live one-time secret: never shown
        push["events"] = []
        pushes.append(push)
    if pushes:
        by_id = {p["id"]: p for p in pushes}
        for e in db.execute("SELECT push_id, at, state, detail FROM push_events WHERE push_id IN"
                            " (%s) ORDER BY id" % ",".join("?" * len(by_id)), list(by_id)):
            by_id[e["push_id"]]["events"].append({"at": e["at"], "state": e["state"],
                                                  "detail": e["detail"]})
    return pushes


def get_push(db, push_id):
    found = find_pushes(db, ids=[push_id], limit=1)
    return found[0] if found else None
