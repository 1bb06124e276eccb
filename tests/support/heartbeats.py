"""A fleet of heartbeat-only devices: N MQTT clients (paho) in one process, each publishing the
firmware's `NAME/status` heartbeat every `interval` seconds, spread over the interval.

    with HeartbeatFleet(mosquitto.port, 500, prefix="hb") as fleet:   # hb-000 ... hb-499
        fleet.wait_connected(30)

Each client has its own client id and the firmware's last will (retained
`{"online":false}`), so a client that drops shows offline as a board would. They present
themselves and nothing more: no subscriptions, no pushes (use dcc_sim.SimDevice for that).

A few threads drive all the clients through paho's external-loop calls (loop_read,
loop_write, loop_misc on a selector) instead of one loop_start() thread per client: 500 clients
cost about as much CPU as the heartbeats they send (python -m tests.support.heartbeats --help).
"""
import argparse
import hashlib
import json
import random
import selectors
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion

from webapp import assets
from webapp.board_tools import board_files

FW = "0.1.0"  # firmware/link.py
FEATURES = ["ext", "bundle", "rm"]  # firmware/loader.py, without a key
MICROPYTHON = [1, 24, 1, ""]  # sys.implementation.version of a 1.24.1 board
MPY = 6 | 3 << 8 | 10 << 10  # sys.implementation._mpy: .mpy v6.3, xtensawin
LAST_WILL = b'{"online":false}'  # firmware/link.py
KEEPALIVE = 30  # the firmware's default


def board_file_hashes():
    """{name: sha1} of the runtime's files, as a board that runs them reports them."""
    return {f.name: hashlib.sha1(f.read_bytes()).hexdigest()
            for f in board_files(assets.folder("firmware"))}


class _Member:
    """One device: its client, what it reports and when it reports next."""

    def __init__(self, name, files, interval, due):
        self.name = name
        self.topic = name + "/status"
        self.files = files
        self.interval = interval
        self.due = due
        self.started = time.time()
        self.boot = random.randint(1, 40)
        self.connected = False
        self.silenced = False  # gone without a goodbye: the driver closes its socket
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name,
                                  clean_session=True)
        self.client.will_set(self.topic, LAST_WILL, qos=0, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connected = not reason.is_failure

    def _on_disconnect(self, *args):
        self.connected = False

    def heartbeat(self):
        """The payload firmware/runtime.py publishes (the same keys, the files last)."""
        doc = {"online": True, "fw": FW, "uptime": int(time.time() - self.started),
               "boot": self.boot, "mem_free": random.randint(17000, 19000),
               "interval": self.interval, "features": FEATURES,
               "plugins": {"lamp": {"led": False, "relay": True}},
               "micropython": MICROPYTHON, "_mpy": MPY, "files": self.files}
        return json.dumps(doc, separators=(",", ":")).encode()


class HeartbeatFleet:
    """`count` heartbeat-only devices named PREFIX-000... on one broker (module docstring)."""

    def __init__(self, port, count, prefix="hb", interval=10, threads=2, host="127.0.0.1",
                 files=None, names=None):
        self.host, self.port = host, port
        self.interval = interval
        files = board_file_hashes() if files is None else files
        names = names or ["%s-%03d" % (prefix, i) for i in range(count)]
        now = time.monotonic()
        # spread over the interval, as devices booted at different times are
        self.members = [_Member(n, files, interval, now + interval * i / len(names))
                        for i, n in enumerate(names)]
        self.sent = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._drive, args=(self.members[i::threads],),
                                          name="heartbeats-%d" % i, daemon=True)
                         for i in range(min(threads, len(self.members)))]

    @property
    def names(self):
        return [m.name for m in self.members]

    def start(self):
        for m in self.members:
            m.client.connect(self.host, self.port, keepalive=KEEPALIVE)
        for t in self._threads:
            t.start()
        return self

    def wait_connected(self, timeout=30):
        end = time.monotonic() + timeout
        while not all(m.connected for m in self.members):
            if time.monotonic() > end:
                raise TimeoutError("%d of %d heartbeat clients connected" % (
                    sum(m.connected for m in self.members), len(self.members)))
            time.sleep(0.05)
        return self

    def silence(self, names):
        """These devices drop off as a board that loses power does: no goodbye, so the
        broker sends their last will and the server shows them offline."""
        names = set(names)
        for m in self.members:
            if m.name in names:
                m.silenced = True

    def stop(self, clean=True):
        """Stop beating; clean=False leaves the sockets to close without a DISCONNECT, so the
        broker sends each last will (the devices show offline at once)."""
        self._stop.set()
        for t in self._threads:
            t.join(10)
        for m in self.members:
            if clean and not m.silenced:
                m.client.disconnect()
            sock = m.client.socket()
            if sock is not None:
                sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _drive(self, members):
        # One thread, many clients: wait on all their sockets at once, read what came, send
        # the heartbeats that are due, and let paho ping at its keepalive.
        sel = selectors.DefaultSelector()
        for m in members:
            sel.register(m.client.socket(), selectors.EVENT_READ, m)
        misc_at = 0
        while not self._stop.is_set():
            now = time.monotonic()
            due = min((m.due for m in members if not m.silenced), default=now + 0.5)
            for key, _ in sel.select(timeout=max(0, min(due - now, 0.5))):
                key.data.client.loop_read()
            now = time.monotonic()
            for m in members:
                if m.silenced and m.connected:
                    sel.unregister(m.client.socket())
                    m.client.socket().close()
                    m.connected = False
                if m.silenced:
                    continue
                if m.due <= now:
                    m.due += m.interval
                    if m.connected:
                        m.client.publish(m.topic, m.heartbeat(), qos=0, retain=True)
                        self.sent += 1
                if m.client.want_write():
                    m.client.loop_write()
            if now >= misc_at:
                misc_at = now + 1
                for m in members:
                    if not m.silenced:
                        m.client.loop_misc()
        sel.close()


def main():
    # A fleet on its own, to watch its cost: `time` it, or top while it runs.
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--prefix", default="hb")
    p.add_argument("--interval", type=float, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=60, help="stop after this long")
    a = p.parse_args()
    fleet = HeartbeatFleet(a.port, a.count, a.prefix, a.interval, a.threads).start()
    fleet.wait_connected()
    t0, c0 = time.monotonic(), time.process_time()
    time.sleep(a.seconds)
    cpu = time.process_time() - c0
    print("%d clients, %d heartbeats in %.0f s, %.1f %% of one core" % (
        a.count, fleet.sent, a.seconds, 100 * cpu / (time.monotonic() - t0)))
    fleet.stop()


if __name__ == "__main__":
    main()
