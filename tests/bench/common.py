"""What the benchmarks share: payload files, flash folders for each design, the in-process
server, and waiting on a device's heartbeat or a push's end with a deadline."""
import atexit
import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from dcc_sim.launcher import FIRMWARE_DIR, SimDevice
from tests.support.mosquitto import Mosquitto, free_port
from webapp import board_tools
from webapp.board_tools import board_files

SEED_DIR = Path(__file__).resolve().parent / "seed_designs"
BLOB = "blob.txt"  # the pushed file's name on the device: a data file, never executed

# The designs a device can run, as (key, label).
OURS_SOURCE = "dcc-ota"
OURS_MPY = "dcc-ota-mpy"
SEED_JSON = "seed-json"
SEED_PIPE = "seed-pipe"
LABELS = {
    OURS_SOURCE: "DCC-OTA connect-back (source .py)",
    OURS_MPY: "DCC-OTA connect-back (precompiled .mpy)",
    SEED_JSON: "seed attempt 1: whole file as JSON in one MQTT message",
    SEED_PIPE: "seed attempt 2: `name\\|sha1\\|contents` in one MQTT message",
}


def text_blob(size, tag="v1"):
    """`size` bytes of ASCII text lines (JSON-safe: no quotes, no backslashes)."""
    line = ("# night lamp %s: keep the built-in LED off, the relay on the button..\n" % tag)
    body = (line * (size // len(line) + 1)).encode()[:size - 1]
    return body + b"\n"


def sha1(data):
    return hashlib.sha1(data).hexdigest()


_images = {}


def board_image():
    """The precompiled board files (webapp/board_tools.py), made once per run."""
    if "mpy" not in _images:
        out = Path(tempfile.mkdtemp(prefix="dcc-bench-mpy-"))
        atexit.register(shutil.rmtree, out, True)
        board_tools.board_image(board_files(FIRMWARE_DIR), out)
        _images["mpy"] = out
    return _images["mpy"]


def prepare_flash(flash, design, firmware_dir=FIRMWARE_DIR):
    """A fresh flash folder with the files of `design` (see LABELS); returns SimDevice kwargs."""
    shutil.rmtree(flash, ignore_errors=True)
    flash.mkdir(parents=True)
    if design == OURS_MPY:
        for f in board_image().iterdir():  # what SimDevice(precompiled=True) seeds
            shutil.copyfile(f, flash / f.name)
        return {"precompiled": True}
    for f in board_files(firmware_dir):
        shutil.copyfile(f, flash / f.name)
    if design in (SEED_JSON, SEED_PIPE):
        shutil.copyfile(SEED_DIR / "seed_common.py", flash / "seed_common.py")
        shutil.copyfile(SEED_DIR / ("seed_json.py" if design == SEED_JSON else "seed_pipe.py"),
                        flash / "seed_ota.py")
        shutil.copyfile(SEED_DIR / "main.py", flash / "main.py")
    return {}


def start_device(name, root, design, broker_port, heap="38wK", heartbeat=30,
                 firmware_dir=FIRMWARE_DIR, **kw):
    flash = Path(root) / name
    extra = prepare_flash(flash, design, firmware_dir)
    extra.update(kw)
    # A board confirms an update after 30 s on probation; what is measured here ends at
    # "back online", so the devices confirm at once.
    extra["settings"] = dict({"confirm_after": 0}, **extra.get("settings", {}))
    return SimDevice(name, flash, broker_port=broker_port, heap=heap, heartbeat=heartbeat,
                     log_path=Path(root) / (name + ".log"), **extra).start()


def seed_message(design, data, name=BLOB):
    """The one MQTT message a seed design takes on ID/OTA."""
    if design == SEED_JSON:
        return b'{"name":"%s","sha1":"%s","content":"%s"}' % (
            name.encode(), sha1(data).encode(), data)
    return b"%s|%s|%s" % (name.encode(), sha1(data).encode(), data)


class Sender:
    """The server's own transfer code (webapp.transfer.TransferSession) serving one file
    once, in a thread, without the rest of the server: `with Sender(path) as tx:` publish
    tx.trigger(name); leaving the block cancels it if the device never came."""

    def __init__(self, path, timeout=30.0):
        import secrets
        from webapp.transfer import TransferSession

        self.path = Path(path)
        data = self.path.read_bytes()
        self.size, self.sha1 = len(data), sha1(data)
        self.token = secrets.token_hex(16)
        self.session = TransferSession([(str(self.path), self.size)], token=self.token,
                                       bind="127.0.0.1", timeout=timeout,
                                       on_event=self._event)
        self.events = {}  # state -> time.time() of its first report
        self.error = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _event(self, state, detail):
        self.events.setdefault(state, time.time())

    def _serve(self):
        try:
            self.session.serve()
            self.events["closed"] = time.time()
        except Exception as e:  # TransferError, or a cancel from __exit__
            self.error = e

    def trigger(self, name):
        from webapp.push.trigger import build_trigger

        return build_trigger("127.0.0.1", self.session.port, name, self.sha1, self.size,
                             self.token)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.session.cancel("done")
        self._thread.join(10)
        self.session.close()


def broken(dev):
    """Why the device is not running the full runtime, from its log; None while it is fine."""
    text = dev.log_text()
    for mark in ("MemoryError", "[sim] crashed", "failed to load", "Traceback"):
        if mark in text:
            lines = [l for l in text.splitlines() if "Error" in l or mark in l]
            return lines[-1][:160] if lines else mark
    return None


def wait_online(watcher, dev, pred, timeout, since=0):
    """The device's first heartbeat matching pred; raises DeviceFailed with the reason when its
    log shows a crash or a MemoryError first, TimeoutError after timeout."""
    topic = dev.name + "/status"
    end = time.monotonic() + timeout
    while True:
        why = broken(dev)
        if why:
            raise DeviceFailed(why)
        try:
            return watcher.wait_json(topic, lambda d: d.get("online") is True and pred(d),
                                     timeout=0.05, since=since)
        except TimeoutError:
            if time.monotonic() > end:
                raise


class DeviceFailed(Exception):
    """The simulated device crashed or ran out of memory."""


# -- the server in this process (figures 3 and 4) -------------------------------------------

@contextlib.contextmanager
def quiet_logs():
    names = ("webapp", "amqtt", "transitions", "flask_mqtt", "paho")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def broker(kind):
    """('mosquitto', port) with set_tcp_nodelay true or false, or ('amqtt', port) for the
    server's embedded broker (started by the server itself)."""
    if kind == "amqtt":
        yield {"OTA_EMBEDDED_BROKER_PORT": free_port(), "OTA_EMBEDDED_BROKER_BIND": "127.0.0.1"}
        return
    with Mosquitto(nodelay=(kind == "mosquitto")) as m:
        yield {"MQTT_BROKER_URL": "127.0.0.1", "MQTT_BROKER_PORT": m.port}


def broker_port(conf):
    return conf.get("MQTT_BROKER_PORT") or conf["OTA_EMBEDDED_BROKER_PORT"]


@contextlib.contextmanager
def server(tmp, broker_conf):
    """The app with its services running in this process, as in a gunicorn worker."""
    from webapp import create_app
    from webapp.services import start_services, stop_services

    conf = {"OTA_DATABASE": str(Path(tmp) / "db.sqlite"),
            "OTA_FILE_STORE": str(Path(tmp) / "files"),
            "OTA_ADVERTISE_HOST": "127.0.0.1", "OTA_TRANSFER_BIND": "127.0.0.1",
            "OTA_SECRET_KEY": "bench", "OTA_CONFIRM_TIMEOUT": 30.0}
    conf.update(broker_conf)
    with quiet_logs():
        app = create_app(conf)
        logging.getLogger("webapp").setLevel(logging.WARNING)
        start_services(app)
        try:
            if not app.extensions["dcc_ota"].services.bus.wait_connected(15):
                raise RuntimeError("the server could not reach its MQTT broker")
            yield app
        finally:
            stop_services(app)


def push_and_wait(app, device, data, name, timeout=60):
    """Store data, push it to device, wait for the end; returns the push with its timeline
    as {state: time}. Raises RuntimeError when the push does not end `done`."""
    from webapp.db import get_db
    from webapp.push.states import FINAL
    from webapp.push.store import get_push

    with app.app_context():
        db = get_db()
        ext = app.extensions["dcc_ota"]
        f = ext.store.save(db, io.BytesIO(data), name)
        service = ext.services.pushes
        push_id = service.create(db, device, [f])
        # Block on the push thread's end instead of polling the database: a poll would
        # compete with the push for the interpreter while it is being timed.
        if not service.wait(push_id, timeout):
            raise TimeoutError("push %d did not end within %ss" % (push_id, timeout))
        push = get_push(db, push_id)
        if push["state"] not in FINAL:
            raise RuntimeError("push %d ended in state %s" % (push_id, push["state"]))
    if push["state"] != "done":
        raise RuntimeError("push %d to %s ended %s: %s %s" % (
            push_id, device, push["state"], push["reason"], push["detail"]))
    push["at"] = {e["state"]: e["at"] for e in push["events"]}
    return push


SHM = "/dev/shm"


def workdir(prefix):
    """A scratch folder for flash folders, the server's store and logs: on tmpfs when there
    is one, so that the host disk's writeback (ext4 flushes a file renamed over another)
    does not enter the figures."""
    return tempfile.TemporaryDirectory(prefix="dcc-bench-%s-" % prefix,
                                       dir=SHM if workdir_on_tmpfs() else None)


def workdir_on_tmpfs():
    return os.path.isdir(SHM) and os.access(SHM, os.W_OK)


