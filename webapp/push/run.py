"""One push's life on its own thread: its turn, its attempts, its end (PushRun).

A run owns its state (the token, the transfer session, what it has seen), its events (a
queue the MQTT thread and the user fill: PushRun.post) and its record (push/store.py). Each
step is a method; any failure is a PushFailed (or a TransferError from the socket) that
`run()` turns into the push's final state. Whatever happens, a run ends in a final state
with a reason, or leaves its id to the service to finish (PushRun.unrecorded).
"""
import logging
import queue
import secrets
import threading
import time

from .. import keys
from ..bus import BusError
from ..db import connect
from ..manifest import BadPayload, check_fit, manifest, manifest_sha1
from ..netinfo import advertise_host
from ..transfer import TransferError, TransferSession
from . import store
from .states import Note, State
from .trigger import build_trigger

log = logging.getLogger(__name__)

# reasons tried again (OTA_RETRIES): no port is free in OTA_TRANSFER_PORTS while as many
# pushes run, the device did not connect back, or the transfer broke
TRANSIENT = ("no port", "no connection", "transfer broken")
_PROGRESS_EVERY = 0.25  # seconds between progress writes to the database
_LEASE_POLL = 0.5       # seconds between tries for a device another process holds
_EXPLAIN = 2.0          # seconds a broken transfer waits for the device's status saying why


class PushFailed(Exception):
    """A push cannot go on: `reason` names the failure shown to the user ("device offline",
    "timeout", "rolled back", the device's own), `detail` says what happened."""

    def __init__(self, reason, detail=None):
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason, self.detail = reason, detail


class _Deadline(Exception):
    """next_event(): the deadline passed with no event."""


class _Abandoned(Exception):
    """next_event(): this process stops following the push (PushRun.abandon)."""


class PushRun:
    """One push from its turn to its end. `service` lends it the config, bus, registry,
    file store and this process's owner id; nothing else reaches into the run but post(),
    cancel() and abandon()."""

    def __init__(self, service, push_id, device, items, force, reconcile=None, token=None):
        self.service, self.config = service, service.config
        self.id, self.device, self.items, self.force = push_id, device, items, force
        # cut off mid-way: (what cut it off, the reason if the device kept its old files), as
        # ("the server restarted", "server stopped"); only ask the device what it has
        self.reconcile = reconcile
        self.token = token          # the attempt's one-time token; statuses carry it
        self.finished = threading.Event()
        self.cancelled = None       # (reason, detail) once cancelled
        self.unrecorded = False     # its end could not be written: the service finishes it
        self.delivered = bool(reconcile)  # the device has every byte: it decides the outcome
        self._events = queue.Queue()
        self._session = None
        self._db = None
        self._pending = []          # steps noted during a transfer, written every so often
        self._last_write = 0.0
        self._transferring = False
        self._acked = 0

    # -- from other threads -----------------------------------------------------------------

    def post(self, kind, msg):
        """An event for the run: ("device", status dict), ("heartbeat", Heartbeat)."""
        if kind == "device" and msg["state"] == "failed" and self._session is not None \
                and (not self.token or msg["token"] == self.token):
            self._session.cancel(msg["reason"] or "failed", msg["detail"])
        self._events.put((kind, msg))

    def cancel(self, reason, detail):
        self.cancelled = (reason, detail)
        self._events.put(("cancel", None))
        if self._session is not None:
            self._session.cancel(reason, detail)

    def abandon(self):
        """Stop following a delivered push without ending it: its row stays as it is, for
        the process that adopts it (a running server: PushService.resume) to finish with what
        the device reports."""
        self._events.put(("abandon", None))

    # -- the thread ---------------------------------------------------------------------------

    def run(self, db):
        """Hold the device, then the attempts (or the reconciliation); the push ends here in
        a final state, whatever is raised."""
        self._db = db
        try:
            self._hold_device()
            if self.reconcile:
                self._reconcile()
            else:
                self._attempts()
        except _Abandoned:
            store.note(db, self.id, Note.LEFT, "its process stopped following it; a running "
                       "server finishes it with what the device reports")
        except (PushFailed, TransferError) as exc:
            self.fail(exc.reason, exc.detail)
        except BusError as exc:
            self.fail("broker unreachable", str(exc))
        except Exception as exc:  # the thread's boundary: never leave a push hanging
            log.exception("push %d crashed", self.id)
            self.fail("server error", repr(exc))

    def fail(self, reason, detail, db=None):
        """End the push as failed. The recording itself may fail (the database busy or its
        disk full): then once more on a fresh connection; if that fails too the run is left
        `unrecorded` for the service (cancel() still ends it)."""
        for db in (self._db or db, None):
            try:
                store.finish(db or connect(self.config["OTA_DATABASE"]), self.id, State.FAILED,
                             reason, detail)
                return
            except Exception:  # noqa: BLE001 (what went wrong is logged; nothing else can)
                if db is None:
                    log.exception("push %d: could not record its failure (%s)", self.id, reason)
                    self.unrecorded = True
                else:
                    log.warning("push %d: recording its failure failed; trying again", self.id)

    def next_event(self, deadline):
        """(kind, msg) of the next event before `deadline` (time.monotonic()): "device" or
        "heartbeat". A cancel raises PushFailed, an abandon _Abandoned, the deadline
        _Deadline. A device status about another push (its token) is skipped."""
        while True:
            try:
                kind, msg = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise _Deadline() from None
            if kind == "cancel" and self.delivered:
                # it came as the last bytes went: too late to cancel, the device decides;
                # a process that stops leaves the push to the next one
                if self.service.stopping:
                    raise _Abandoned()
                continue
            if kind == "cancel":
                raise PushFailed(*self.cancelled)
            if kind == "abandon":
                raise _Abandoned()
            if kind == "device" and self.token and msg["token"] != self.token:
                continue
            return kind, msg

    def _pause(self, seconds):
        """Sleep, unless the push is cancelled meanwhile; events in between are dropped."""
        end = time.monotonic() + seconds
        try:
            while True:
                self.next_event(end)
        except _Deadline:
            pass

    # -- holding the device -----------------------------------------------------------------

    def _hold_device(self):
        """Wait until no push of another process talks to the device (store.take_lease). A
        holder whose process is gone from this host is set aside at once."""
        noted = False
        while True:
            holder = store.take_lease(self._db, self.id, self.device)
            if holder is None:
                return
            if self.service.owner_gone(holder["owner"]):
                store.break_lease(self._db, holder["id"], holder["owner"])
                continue
            if not noted:
                noted = True
                store.note(self._db, self.id, Note.HELD, "push %d (another process) is updating "
                           "%s: waiting for it to end" % (holder["id"], self.device))
            self._pause(_LEASE_POLL)

    def _wait_verdict(self, device):
        """The device is on probation after an earlier update: it refuses a trigger until it
        confirms or rolls back. Wait for that (OTA_CONFIRM_TIMEOUT); the device record
        then."""
        limit = self.config["OTA_CONFIRM_TIMEOUT"]
        store.note(self._db, self.id, Note.HELD, "%s is on probation after an update: waiting "
                   "for its verdict (up to %s)" % (self.device, span(limit)))
        end = time.monotonic() + limit
        while True:
            try:
                kind, msg = self.next_event(end)
            except _Deadline:
                raise PushFailed("device busy", "still on probation after an earlier update "
                                 "%s later" % span(limit)) from None
            verdict = kind == "device" and msg["state"] in ("confirmed", "rolled_back")
            if verdict or (kind == "heartbeat" and msg.online and not msg.probation):
                return self.service.registry.get(self._db, self.device)

    def _wait_online(self, device):
        """A known device that is offline: wait (OTA_OFFLINE_WAIT) for its next heartbeat."""
        limit = self.config["OTA_OFFLINE_WAIT"]
        offline = "last heard from %ds ago" % (time.time() - device.last_seen)
        if limit <= 0:
            raise PushFailed("device offline", offline)
        store.step(self._db, self.id, State.WAITING, "device offline (%s); waiting up to %s"
                   % (offline, span(limit)))
        end = time.monotonic() + limit
        while True:
            try:
                kind, msg = self.next_event(end)
            except _Deadline:
                raise PushFailed("device offline", "not back within %s" % span(limit)) from None
            if kind == "heartbeat" and msg.online:
                return self.service.registry.get(self._db, self.device)

    # -- attempts -------------------------------------------------------------------------------

    def _attempts(self):
        retries, backoff = self.config["OTA_RETRIES"], self.config["OTA_RETRY_BACKOFF"]
        number = 1
        while True:
            try:
                return self._attempt()
            except (TransferError, PushFailed) as exc:
                if exc.reason not in TRANSIENT or number > retries or self.cancelled:
                    raise
                delay = backoff * 2 ** (number - 1)
                number += 1
                store.attempt(self._db, self.id, number)
                store.note(self._db, self.id, Note.RETRYING, "attempt %d of %d in %gs, after %s"
                           % (number, retries + 1, delay, exc))
                self._pause(delay)

    def _attempt(self):
        """One try: the device as it is now, the trigger, the transfer, the confirmation."""
        device = self._ready_device()
        form, bundle = self._negotiate(device)
        self._pending, self._last_write, self._transferring, self._acked = [], 0.0, False, 0
        head = manifest(self.items) if bundle else None
        files = [(self.service.store.path(i.file.sha256), i.file.size)
                 for i in self.items if i.file]
        with TransferSession([head] + files if bundle else files, self.token,
                             self.config["OTA_TRANSFER_BIND"], self.config["OTA_TRANSFER_PORTS"],
                             self.config["OTA_TRANSFER_TIMEOUT"], on_event=self._on_transfer
                             ) as session:
            self._session = session
            try:
                self._trigger(device, form, session.port, head)
                session.serve()
            except TransferError as exc:
                raise self._explained(exc) from None
            finally:
                self._session = None
                self._flush()
        store.progress(self._db, self.id, session.payload)
        self.delivered = device is not None  # before the row says so: see service.stop()
        store.step(self._db, self.id, State.SENT, "%d bytes" % session.payload)
        if device is None:
            # Never heard from: the seed's firmware sends no heartbeat and no status.
            store.finish(self._db, self.id, State.UNCONFIRMED, None,
                         "the device sends no confirmation")
            return
        self._confirm(device.boot, probation=bundle)

    def _explained(self, exc):
        """A transfer the device broke off may be a refusal (a name it cannot place, a
        protected file): its ota/status says so, often a moment after the socket closed. That
        reason (PushFailed, not tried again) when it comes within _EXPLAIN seconds, else exc
        as it was."""
        if exc.reason != "transfer broken" or not self.token:
            return exc
        return self._failure_said(_EXPLAIN) or exc

    def _failure_said(self, within):
        """The PushFailed of a failed or rolled_back status the device sends within `within`
        seconds, or None."""
        end = time.monotonic() + within
        try:
            while True:
                kind, msg = self.next_event(end)
                if kind == "device" and msg["state"] == "failed":
                    return PushFailed(msg["reason"] or "failed", msg["detail"])
                if kind == "device" and msg["state"] == "rolled_back":
                    return PushFailed("rolled back", msg["reason"] or msg["detail"])
        except _Deadline:
            return None

    def _ready_device(self):
        """The device's record once it is online and off probation (None: never heard from);
        PushFailed if the push no longer fits what it has."""
        device = self.service.registry.get(self._db, self.device)
        if device is not None and not device.online:
            device = self._wait_online(device)
        if device is not None and device.probation:
            device = self._wait_verdict(device)
        if device is not None:  # again: a push before this one may have changed its files
            try:
                check_fit(self.items, device.files)
            except BadPayload as exc:
                raise PushFailed("rejected", str(exc)) from None
        return device

    def _negotiate(self, device):
        """(form, bundle): the trigger's form for what the device's firmware takes; a new
        token for this attempt where it takes one."""
        bundle = device is not None and "bundle" in device.features
        extended = device is not None and device.extended
        if len(self.items) > 1 and not bundle:
            raise PushFailed("rejected", "the device's firmware takes one file at a time")
        if any(i.delete for i in self.items) and (device is None or "rm" not in device.features):
            raise PushFailed("rejected", "the device's firmware cannot delete files")
        self.token = secrets.token_hex(16) if extended or bundle else None
        form = "bundle" if bundle else "extended" if extended else "legacy"
        store.negotiated(self._db, self.id, form, self.token)
        return form, bundle

    def _trigger(self, device, form, port, head):
        """Publish ID/OTA: where to fetch the update, signed where the device has a key."""
        host = self.config["OTA_ADVERTISE_HOST"] or advertise_host(self.service.bus.local_address())
        if head is not None:
            extra = ["bundle=%d" % len(self.items)] + (["force=1"] if self.force else [])
            trigger = build_trigger(host, port, "bundle", manifest_sha1(head), len(head),
                                    self.token, extra)
        else:
            item = self.items[0]
            trigger = build_trigger(host, port, item.target, item.file.sha1, item.file.size,
                                    self.token)
        key = keys.get(self._db, self.device)
        if key is not None and self.token is not None:
            # HMAC-SHA1 only for a verifying device whose hashlib lacks SHA-256.
            sha256 = "sha256" in device.features or "sig" not in device.features
            trigger = keys.sign(trigger, key, keys.next_counter(self._db, self.device), sha256)
            form += ", signed"
        self.service.bus.publish("%s/OTA" % self.device, trigger)
        store.step(self._db, self.id, State.TRIGGER_SENT, "%s form, %s:%d" % (form, host, port))

    def _confirm(self, old_boot, probation):
        """Wait for the device: verified, rebooting, back online with the new files, and (on
        firmware with a journal) confirmed after its probation, or rolled back."""
        limit = self.config["OTA_CONFIRM_TIMEOUT"]
        end = time.monotonic() + limit
        seen, new_boot = [], None
        while True:
            try:
                kind, msg = self.next_event(end)
            except _Deadline:
                raise PushFailed("timeout", "no confirmation within %gs after %s"
                                 % (limit, seen[-1] if seen else "sent")) from None
            if kind == "device":
                if self._verdict(msg, "confirmed after its probation%s" % (
                        ", boot %s" % new_boot if new_boot is not None else "")):
                    return
                state = msg["state"]
                if state in ("verified", "rebooting") and state not in seen:
                    seen.append(state)
                    store.step(self._db, self.id, State(state), msg["sha1"] or None)
            elif kind == "heartbeat" and msg.online and msg.boot != old_boot:
                wrong = not_applied(self.items, msg.files)
                if wrong and "verified" not in seen and old_boot is not None:
                    # back from a restart before it had every byte (power, a crash): the
                    # bytes in the socket buffers died with it; a transient failure, retried
                    raise PushFailed("transfer broken", "the device restarted (boot %s) "
                                     "before it had the whole update" % msg.boot)
                if probation:
                    if not wrong and "online" not in seen:
                        seen.append("online")
                        new_boot = msg.boot
                        store.step(self._db, self.id, State.ONLINE,
                                   "boot %s, on probation" % msg.boot)
                    continue  # the verdict comes as `confirmed` or `rolled_back`
                if wrong:
                    raise PushFailed("not applied", "the device rebooted without the new %s"
                                     % ", ".join(wrong))
                store.finish(self._db, self.id, State.DONE, None, "back online, boot %s, sha1 %s"
                             % (msg.boot, self.items[0].file.sha1))
                return

    def _verdict(self, status, done_detail):
        """True when the device's status ends the push as `done`; PushFailed for a failure or
        a rollback; False for any other status."""
        state = status["state"]
        if state == "failed":
            raise PushFailed(status["reason"] or "failed", status["detail"])
        if state == "rolled_back":
            raise PushFailed("rolled back", status["reason"] or status["detail"])
        if state == "confirmed":
            store.finish(self._db, self.id, State.DONE, None, done_detail)
            return True
        return False

    def _reconcile(self):
        """A push cut off (by a restart, a killed process): its device's next heartbeats say
        how it ended. The new files, off probation: done. The old files: failed. Nothing
        within OTA_CONFIRM_TIMEOUT (or still on probation): failed, saying so."""
        limit = self.config["OTA_CONFIRM_TIMEOUT"]
        end = time.monotonic() + limit
        why, reason = self.reconcile
        # its verdict may have come before anyone followed the push: the device's last status
        said = self.service.registry.last_ota_status(self._db, self.device)
        if said and self.token and said["token"] == self.token and self._verdict(
                said, "confirmed after its probation, seen after %s" % why):
            return
        while True:
            try:
                kind, msg = self.next_event(end)
            except _Deadline:
                raise PushFailed(reason, "%s during the push, and the device said nothing "
                                 "conclusive within %gs" % (why, limit)) from None
            if kind == "device":
                if self._verdict(msg, "confirmed after its probation, seen after %s" % why):
                    return
                continue
            if kind != "heartbeat" or not msg.online:
                continue
            wrong = not_applied(self.items, msg.files)
            if not wrong and not msg.probation:
                store.finish(self._db, self.id, State.DONE, None, "the device reports the new "
                             "files (boot %s), seen after %s" % (msg.boot, why))
                return
            if wrong:  # its report of a rollback, with the reason, may follow the heartbeat
                raise self._failure_said(_EXPLAIN) or PushFailed(
                    reason, "%s during the push; the device has the old %s"
                    % (why, ", ".join(wrong)))

    # -- recording a transfer ---------------------------------------------------------------

    def _on_transfer(self, state, detail):
        """Called on the sending thread between chunks: steps are noted with their time and
        written at most every _PROGRESS_EVERY, so a short transfer is never held up by the
        database (they are written when it ends: _flush)."""
        now = time.monotonic()
        if state == "connected":
            self._pending.append((State.CONNECTED, detail, time.time()))
            self._last_write = now
        elif state == "progress":
            if not self._transferring:
                self._transferring = True
                self._pending.append((State.TRANSFERRING, "%d bytes" % self._session.payload,
                                      time.time()))
            self._acked = detail
            if now - self._last_write >= _PROGRESS_EVERY:
                self._last_write = now
                self._flush()

    def _flush(self):
        for state, detail, at in self._pending:
            store.step(self._db, self.id, state, detail, at)
        self._pending = []
        if self._acked:
            store.progress(self._db, self.id, self._acked)


def not_applied(items, files):
    """The names of `items` that a heartbeat's `files` ({name: sha1}) do not show as the push
    left them: a written file without its new SHA-1, a deleted file still there."""
    return [i.target for i in items if files.get(i.target) != (i.file.sha1 if i.file else None)]


def span(seconds):
    """A duration for people: "90s", "5 min", "2 h"."""
    if seconds >= 3600:
        return "%g h" % round(seconds / 3600, 1)
    if seconds >= 60:
        return "%g min" % round(seconds / 60, 1)
    return "%gs" % seconds
