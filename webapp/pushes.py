"""Push orchestration: one thread per push walks it from queued to done, or to one named failure.

queued → [waiting] → trigger_sent → connected → transferring → sent → verified → rebooting
       → [online, on probation] → done
A device that sends no confirmation (the seed's firmware) ends `unconfirmed` once it has the
bytes. Transient failures (no connection, a broken transfer) are tried again with back-off.
Every step is a timestamped row in push_events (push_log.py): the push's timeline.
"""
import collections
import contextlib
import logging
import queue
import secrets
import threading
import time

from . import keys, push_log
from .bus import BusError
from .db import connect, get_db
from .manifest import BadPayload, Item, check_fit, check_items, manifest, manifest_sha1
from .names import check_device_name
from .netinfo import advertise_host
from .payloads import load_object
from .schemas import OtaStatusDoc, parse
from .transfer import TransferError, TransferSession

log = logging.getLogger(__name__)

FINAL = push_log.FINAL
TRANSIENT = ("no connection", "transfer broken")
_PROGRESS_EVERY = 0.25  # seconds between progress writes to the database
MAX_STATUS = 2048


class PushRejected(Exception):
    """The push cannot start: the files, the device or a name on the device is not valid."""


def build_trigger(host, port, target, sha1, size=None, token=None, extra=()):
    """The `ID/OTA` payload: the seed's four fields; size, token and key=value fields after."""
    fields = [host, str(port), target, sha1]
    if token is not None:
        fields += [str(size), token] + list(extra)
    return "|".join(fields)


def parse_device_status(payload):
    """The dict of an `ID/ota/status` payload (schemas.OtaStatusDoc); ValueError says what is
    wrong with it, the field first."""
    st = parse(OtaStatusDoc, load_object(payload, MAX_STATUS, "ota status"))
    return {"state": st.state, "token": st.token, "reason": st.reason[:300],
            "detail": st.detail[:300], "sha1": st.sha1}


class _Run:
    """What one push thread needs to know while it runs."""

    def __init__(self, push_id, device, items, force):
        self.id, self.device, self.items, self.force = push_id, device, items, force
        self.token = None
        self.session = None
        self.events = queue.Queue()
        self.finished = threading.Event()
        self.last_progress = 0.0
        self.pending = []         # steps noted during a transfer, not written yet
        self.transferring = False
        self.sent = 0
        self.cancelled = None     # (reason, detail) once cancelled
        self.reconcile = False    # cut off by a restart: only ask the device what it has


class PushService:
    def __init__(self, app, bus, registry, store):
        self.app, self.bus, self.registry, self.store = app, bus, registry, store
        self._lock = threading.Condition()
        self._runs = {}           # push id -> _Run, until it ends
        self._active = {}         # device -> the _Run talking to it now
        self._queues = {}         # device -> push ids in order: one push at a time, FIFO
        self._threads = []
        self._stopping = False
        self._unrecorded = set()  # ids whose thread ended here without recording the end

    # -- starting, waiting, stopping -------------------------------------------------------

    def create(self, db, device, files, target=None, force=False, delete=()):
        """Queue a push to a device; returns its id.

        `files` is one stored file or a reference to one (hash prefix or name), or a list of
        them: several files go as one bundle, each under its own name. `target` renames a
        single file on the device. `delete` names files the same update deletes on the
        device (journaled like a replace: all or none). PushRejected says why a push cannot
        be made, checked against the device's last heartbeat where it has one.
        """
        return self.create_many(db, [device], files, target, force, delete)[0]

    def create_many(self, db, devices, files, target=None, force=False, delete=()):
        """The same push to each of `devices`, all or none: every one is checked before any
        is queued, so a PushRejected for one device leaves no push to the others. Returns
        the ids in the order of `devices`."""
        plans = [self._plan(db, device, files, target, force, delete) for device in devices]
        if self._stopping:
            raise PushRejected("the server is shutting down")
        ids = []
        for device, items in plans:
            push_id = push_log.insert(db, device, items, force)
            self._start(_Run(push_id, device, items, force))
            ids.append(push_id)
        return ids

    def _plan(self, db, device, files, target, force, delete):
        """(device, [Item]) of a push that can be made; PushRejected says why not."""
        try:
            check_device_name(device)
            refs = files if isinstance(files, (list, tuple)) else [files] if files else []
            if target is not None and len(refs) != 1:
                raise BadPayload("a new name on the device is for a push of one file")
            items = []
            for ref in refs:
                stored = self.store.find(db, ref) if isinstance(ref, str) else ref
                if stored is None:
                    raise BadPayload("no stored file matches %r" % ref)
                items.append(Item(stored, target or stored.name))
            items += [Item(None, name) for name in delete]
            check_items(items, force)
            known = self.registry.get(db, device)
            if known is not None:
                check_fit(items, known.files)
        except ValueError as exc:
            raise PushRejected(str(exc)) from None
        if len(items) > 1 and known is not None and "bundle" not in known.features:
            raise PushRejected("%s's firmware takes one file at a time; update its firmware to "
                               "push several at once" % device)
        if delete and (known is None or "rm" not in known.features):
            raise PushRejected("%s's firmware cannot delete files over the air; update its "
                               "firmware first" % device if known else
                               "%s was never heard from: no file of it can be deleted" % device)
        return device, items

    def retry(self, db, push_id):
        """The same files to the same device under the same names, as a new push."""
        row = db.execute("SELECT device, force FROM pushes WHERE id = ?", (push_id,)).fetchone()
        if row is None:
            raise PushRejected("no push %d" % push_id)
        items = self._items(db, push_id)
        if items is None:
            raise PushRejected("a file of push %d was deleted; upload it again" % push_id)
        files = [i for i in items if not i.delete]
        deletes = [i.target for i in items if i.delete]
        if len(files) == 1 and files[0].target != files[0].file.name:
            return self.create(db, row["device"], files[0].file, files[0].target, row["force"],
                               deletes)
        return self.create(db, row["device"], [i.file for i in files], None, row["force"],
                           deletes)

    def resume(self, db):
        """At start: queued or waiting pushes go on; one cut off mid-way is reconciled with
        what its device reports (_reconcile)."""
        for row in db.execute("SELECT id, device, state, force, token FROM pushes"
                              " WHERE state NOT IN (%s) ORDER BY id" % ",".join("?" * len(FINAL)),
                              FINAL).fetchall():
            items = self._items(db, row["id"])
            if items is None:
                push_log.finish(db, row["id"], "failed", "server stopped",
                                "the server restarted during the push; a file of it is gone")
                continue
            run = _Run(row["id"], row["device"], items, bool(row["force"]))
            if row["state"] in ("queued", "waiting"):
                push_log.note(db, row["id"], "resumed", "the server restarted")
            else:
                run.reconcile = True
                run.token = row["token"]  # the device's statuses about it carry it
                push_log.note(db, row["id"], "reconciling", "the server restarted during the "
                              "push: waiting for the device to say what it has")
            self._start(run)

    def wait(self, push_id, timeout=None):
        """Block until the push ends (or timeout); True if it ended."""
        run = self._runs.get(push_id)
        return run.finished.wait(timeout) if run else True

    def cancel(self, push_id, reason="cancelled", detail="cancelled by the user"):
        """End a push that is not final with `reason`, wherever it is; False if it has ended
        (or another process runs it). A push whose thread here ended without recording it is
        ended in the database (call in an app context)."""
        run = self._runs.get(push_id)
        if run is None:
            if push_id not in self._unrecorded:
                return False
            push_log.finish(get_db(), push_id, "failed", reason, detail)
            self._unrecorded.discard(push_id)
            return True
        run.cancelled = (reason, detail)
        run.events.put(("cancel", (reason, detail)))
        with self._lock:
            self._lock.notify_all()  # wakes it if it waits for its turn
        if run.session:
            run.session.cancel(reason, detail)
        return True

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

    def _start(self, run):
        with self._lock:
            self._runs[run.id] = run
            self._queues.setdefault(run.device, collections.deque()).append(run.id)
        thread = threading.Thread(target=self._thread, args=(run,), name="push-%d" % run.id,
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _items(self, db, push_id):
        items = []
        for sha256, target in push_log.files_of(db, push_id):
            stored = self.store.get(db, sha256) if sha256 else None
            if sha256 and stored is None:
                return None
            items.append(Item(stored, target))
        return items

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
                        if run.reconcile:
                            self._reconcile(db, run)
                        else:
                            self._attempts(db, run)
                    finally:
                        self._active.pop(run.device, None)
            except TransferError as exc:
                self._end(db, run, exc.reason, exc.detail)
            except BusError as exc:
                self._end(db, run, "broker unreachable", str(exc))
            except Exception as exc:  # the thread's boundary: never leave a push hanging
                log.exception("push %d crashed", run.id)
                self._end(db, run, "server error", repr(exc))
            finally:
                with self._lock:
                    self._runs.pop(run.id, None)
                run.finished.set()
                log.info("push %d to %s ended", run.id, run.device)

    def _end(self, db, run, reason, detail):
        """Record the push as failed. The recording itself may fail (the database busy or its
        disk full): then once more on a fresh connection, and a failure of that is logged.
        The thread ends either way, and cancel() finishes a row left behind."""
        for attempt in (1, 2):
            try:
                if attempt == 2:
                    db = connect(self.app.config["OTA_DATABASE"])
                push_log.finish(db, run.id, "failed", reason, detail)
                return
            except Exception:  # noqa: BLE001 (what went wrong is logged; nothing else can)
                if attempt == 2:
                    log.exception("push %d: could not record its failure (%s)", run.id, reason)
                    self._unrecorded.add(run.id)  # cancel() can still end it
                else:
                    log.warning("push %d: recording its failure failed; trying again", run.id)

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

    def _attempts(self, db, run):
        cfg = self.app.config
        retries, backoff = cfg["OTA_RETRIES"], cfg["OTA_RETRY_BACKOFF"]
        attempt = 1
        while True:
            try:
                return self._walk(db, run)
            except TransferError as exc:
                if exc.reason not in TRANSIENT or attempt > retries or run.cancelled:
                    raise
                delay = backoff * 2 ** (attempt - 1)
                attempt += 1
                db.execute("UPDATE pushes SET attempt = ? WHERE id = ?", (attempt, run.id))
                push_log.note(db, run.id, "retrying", "attempt %d of %d in %gs, after %s"
                              % (attempt, retries + 1, delay, exc))
                self._sleep(run, delay)

    def _sleep(self, run, seconds):
        """Sleep, unless the push is cancelled meanwhile."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                kind, msg = run.events.get(timeout=left)
            except queue.Empty:
                return
            if kind == "cancel":
                raise TransferError(*msg)

    def _walk(self, db, run):
        cfg = self.app.config
        device = self.registry.get(db, run.device)
        if device is not None and not device.online:
            device = self._wait_online(db, run, device)
        if device is not None:  # again: a push queued before this one may have changed them
            try:
                check_fit(run.items, device.files)
            except BadPayload as exc:
                raise TransferError("rejected", str(exc)) from None
        bundle = device is not None and "bundle" in device.features
        extended = device is not None and device.extended
        if len(run.items) > 1 and not bundle:
            raise TransferError("rejected", "the device's firmware takes one file at a time")
        if any(i.delete for i in run.items) and (device is None or "rm" not in device.features):
            raise TransferError("rejected", "the device's firmware cannot delete files")
        old_boot = device.boot if device else None
        run.token = secrets.token_hex(16) if extended or bundle else None
        form = "bundle" if bundle else "extended" if extended else "legacy"
        db.execute("UPDATE pushes SET form = ?, token = ? WHERE id = ?", (form, run.token, run.id))

        host = cfg["OTA_ADVERTISE_HOST"] or advertise_host(self.bus.local_address())
        files = [(self.store.path(i.file.sha256), i.file.size) for i in run.items if i.file]
        if bundle:
            head = manifest(run.items)
            parts = [head] + files
        else:
            parts = files
        run.last_progress, run.pending, run.transferring, run.sent = 0.0, [], False, 0
        with TransferSession(parts, run.token, cfg["OTA_TRANSFER_BIND"], cfg["OTA_TRANSFER_PORTS"],
                             cfg["OTA_TRANSFER_TIMEOUT"],
                             on_event=lambda state, detail: self._on_transfer(db, run, state, detail)
                             ) as session:
            run.session = session
            if bundle:
                extra = ["bundle=%d" % len(run.items)] + (["force=1"] if run.force else [])
                trigger = build_trigger(host, session.port, "bundle", manifest_sha1(head),
                                        len(head), run.token, extra)
            else:
                item = run.items[0]
                trigger = build_trigger(host, session.port, item.target, item.file.sha1,
                                        item.file.size, run.token)
            key = keys.get(db, run.device)
            if key is not None and run.token is not None:
                # HMAC-SHA1 only for a verifying device whose hashlib lacks SHA-256.
                sha256 = "sha256" in device.features or "sig" not in device.features
                trigger = keys.sign(trigger, key, keys.next_counter(db, run.device), sha256)
                form += ", signed"
            self.bus.publish("%s/OTA" % run.device, trigger)
            push_log.step(db, run.id, "trigger_sent", "%s form, %s:%d" % (form, host, session.port))
            try:
                session.serve()
            finally:
                self._flush(db, run)
        run.session = None
        push_log.progress(db, run.id, session.payload)
        push_log.step(db, run.id, "sent", "%d bytes" % session.payload)

        if device is None:
            # Never heard from: the seed's firmware sends no heartbeat and no status.
            push_log.finish(db, run.id, "unconfirmed", None, "the device sends no confirmation")
            return
        self._confirm(db, run, old_boot, probation=bundle)

    def _reconcile(self, db, run):
        """A push cut off by a restart: its device's next heartbeats say how it ended. The new
        files, off probation: done. The old files: failed. Nothing within
        OTA_CONFIRM_TIMEOUT (or still on probation): failed, saying so."""
        limit = self.app.config["OTA_CONFIRM_TIMEOUT"]
        end = time.monotonic() + limit
        while True:
            try:
                kind, msg = run.events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise TransferError("server stopped", "the server restarted during the push, "
                                    "and the device said nothing conclusive within %gs" % limit
                                    ) from None
            if kind == "cancel":
                raise TransferError(*msg)
            if kind == "device" and msg["state"] in ("failed", "rolled_back", "confirmed"):
                if msg["state"] == "confirmed":
                    push_log.finish(db, run.id, "done", None, "confirmed after its probation,"
                                    " seen after the server restarted")
                    return
                raise TransferError(msg["reason"] or "failed" if msg["state"] == "failed"
                                    else "rolled back", msg["detail"] or msg["reason"])
            if kind != "heartbeat" or not msg.online:
                continue
            wrong = _not_applied(run.items, msg.files)
            if not wrong and not msg.probation:
                push_log.finish(db, run.id, "done", None, "the device reports the new files "
                                "(boot %s), seen after the server restarted" % msg.boot)
                return
            if wrong:
                raise TransferError("server stopped", "the server restarted during the push; "
                                    "the device has the old %s" % ", ".join(wrong))

    def _wait_online(self, db, run, device):
        """A known device that is offline: wait (OTA_OFFLINE_WAIT) for its next heartbeat."""
        limit = self.app.config["OTA_OFFLINE_WAIT"]
        offline = "last heard from %ds ago" % (time.time() - device.last_seen)
        if limit <= 0:
            raise TransferError("device offline", offline)
        push_log.step(db, run.id, "waiting", "device offline (%s); waiting up to %s"
                      % (offline, _span(limit)))
        end = time.monotonic() + limit
        while True:
            try:
                kind, msg = run.events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise TransferError("device offline", "not back within %s" % _span(limit)) from None
            if kind == "cancel":
                raise TransferError(*msg)
            if kind == "heartbeat" and msg.online:
                return self.registry.get(db, run.device)

    def _confirm(self, db, run, old_boot, probation):
        """Wait for the device: verified, rebooting, back online with the new files, and (on
        firmware with a journal) confirmed after its probation, or rolled back."""
        cfg = self.app.config
        deadline = time.monotonic() + cfg["OTA_CONFIRM_TIMEOUT"]
        seen, new_boot = [], None
        while True:
            try:
                kind, msg = run.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TransferError("timeout", "no confirmation within %gs after %s"
                                    % (cfg["OTA_CONFIRM_TIMEOUT"], seen[-1] if seen else "sent")
                                    ) from None
            if kind == "cancel":
                raise TransferError(*msg)
            if kind == "detach":
                push_log.finish(db, run.id, "unconfirmed", None, "nobody waited for the confirmation")
                return
            if kind == "device":
                state = msg["state"]
                if state == "failed":
                    raise TransferError(msg["reason"] or "failed", msg["detail"])
                if state == "rolled_back":
                    raise TransferError("rolled back", msg["reason"] or msg["detail"])
                if state == "confirmed":
                    push_log.finish(db, run.id, "done", None, "confirmed after its probation%s"
                                    % (", boot %s" % new_boot if new_boot is not None else ""))
                    return
                if state in ("verified", "rebooting") and state not in seen:
                    seen.append(state)
                    push_log.step(db, run.id, state, msg["sha1"] or None)
            elif kind == "heartbeat" and msg.online and msg.boot != old_boot:
                wrong = _not_applied(run.items, msg.files)
                if wrong and "verified" not in seen and old_boot is not None:
                    # back from a restart before it had every byte (power, a crash): the
                    # bytes in the socket buffers died with it; a transient failure, retried
                    raise TransferError("transfer broken", "the device restarted (boot %s) "
                                        "before it had the whole update" % msg.boot)
                if probation:
                    if not wrong and "online" not in seen:
                        seen.append("online")
                        new_boot = msg.boot
                        push_log.step(db, run.id, "online", "boot %s, on probation" % msg.boot)
                    continue  # the verdict comes as `confirmed` or `rolled_back`
                if wrong:
                    raise TransferError("not applied", "the device rebooted without the new %s"
                                        % ", ".join(wrong))
                push_log.finish(db, run.id, "done", None, "back online, boot %s, sha1 %s"
                                % (msg.boot, run.items[0].file.sha1))
                return

    # -- recording -------------------------------------------------------------------------

    def _on_transfer(self, db, run, state, detail):
        """Called on the sending thread between chunks: steps are noted with their time and
        written at most every _PROGRESS_EVERY, so a short transfer is never held up by the
        database (they are written when it ends: _flush)."""
        now = time.monotonic()
        if state == "connected":
            run.pending.append(("connected", detail, time.time()))
            run.last_progress = now
        elif state == "progress":
            if not run.transferring:
                run.transferring = True
                run.pending.append(("transferring", "%d bytes" % run.session.payload, time.time()))
            run.sent = detail
            if now - run.last_progress >= _PROGRESS_EVERY:
                run.last_progress = now
                self._flush(db, run)

    def _flush(self, db, run):
        for state, detail, at in run.pending:
            push_log.step(db, run.id, state, detail, at)
        run.pending = []
        if run.sent:
            push_log.progress(db, run.id, run.sent)


def _not_applied(items, files):
    """The names of `items` that a heartbeat's `files` ({name: sha1}) do not show as the push
    left them: a written file without its new SHA-1, a deleted file still there."""
    return [i.target for i in items if files.get(i.target) != (i.file.sha1 if i.file else None)]


def _span(seconds):
    if seconds >= 3600:
        return "%g h" % round(seconds / 3600, 1)
    if seconds >= 60:
        return "%g min" % round(seconds / 60, 1)
    return "%gs" % seconds

