"""Test helpers for simulated devices: an MQTT watcher with deadlines and a one-shot sender.

    with MqttWatcher(mosquitto.port) as mq:
        dev = SimDevice("dev-1", tmp / "dev-1", broker_port=mosquitto.port).start()
        hb = mq.wait_json("dev-1/status", lambda d: d.get("online"))
        with OneShotSender(data) as tx:
            mq.publish("dev-1/OTA", tx.trigger("main.py"))
            done = mq.wait_json("dev-1/ota/status", tx.outcome)
"""
import hashlib
import json
import secrets
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion

TERMINAL_STATES = ("failed", "rebooting")


class MqttWatcher:
    """A paho client subscribed to everything, recording each message for wait_*()."""

    def __init__(self, port, host="127.0.0.1", topic="#"):
        self.host = host
        self.port = port
        self.topic = topic
        self.messages = []  # (topic, payload bytes, retain)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id="watch-" + secrets.token_hex(4))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(self.topic)

    def start(self, timeout=10):
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("watcher could not subscribe on port %d" % self.port)
        return self

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), msg.retain))
            self._cond.notify_all()

    def mark(self):
        """An index to pass as since= so waits only see later messages."""
        with self._cond:
            return len(self.messages)

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=0, retain=retain)
        info.wait_for_publish(5)
        return info

    def wait_for(self, topic, pred=None, timeout=15, since=0):
        """The first payload (bytes) on topic from index since on with pred(payload) true."""
        end = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.messages):
                    t, p, _ = self.messages[i]
                    i += 1
                    if t == topic and (pred is None or pred(p)):
                        return p
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(t, p[:200]) for t, p, _ in self.messages[since:] if t == topic]
                    raise TimeoutError("no matching message on %s within %ss; saw %r"
                                       % (topic, timeout, seen[-5:]))
                self._cond.wait(left)

    def wait_json(self, topic, pred=None, timeout=15, since=0):
        """Like wait_for, for JSON payloads: returns the decoded object."""
        def match(p):
            try:
                d = json.loads(p)
            except ValueError:
                return False
            return pred is None or pred(d)

        return json.loads(self.wait_for(topic, match, timeout, since))

    def latest_json(self, topic, pred=None, timeout=15):
        """The newest JSON payload on topic matching pred so far, else the next one."""
        with self._cond:
            for t, p, _ in reversed(self.messages):
                if t == topic:
                    try:
                        d = json.loads(p)
                    except ValueError:
                        continue
                    if pred is None or pred(d):
                        return d
        return self.wait_json(topic, pred, timeout, self.mark())

    def all_json(self, topic, since=0):
        with self._cond:
            return [json.loads(p) for t, p, _ in self.messages[since:] if t == topic]


class OneShotSender:
    """The server's side of one push: bind, accept, check the token, send, close.

    data is the real file (its sha1 and size go in the trigger); serve, if given, is what
    is actually sent instead (a corrupted, short or long stream). mode "ext" expects the
    token line and keeps waiting after a wrong one; "legacy" serves the first client.
    """

    def __init__(self, data, serve=None, mode="ext", token=None, deadline=30.0):
        self.data = data
        self.serve = data if serve is None else serve
        self.mode = mode
        self.token = token or secrets.token_hex(16)
        self.sha1 = hashlib.sha1(data).hexdigest()
        self.size = len(data)
        self.deadline = deadline
        self.sent = None  # bytes sent to the accepted client, once done
        self.rejected = 0  # clients closed for a wrong or missing token
        self.error = None
        self.done = threading.Event()
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(2)
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def trigger(self, name, host="127.0.0.1", sha1=None, size=None, extra=""):
        """The ID/OTA payload for this push (extended or legacy form)."""
        f = [host, str(self.port), name, sha1 or self.sha1]
        if self.mode == "ext":
            f += [str(self.size if size is None else size), self.token]
        return "|".join(f) + extra

    def outcome(self, status):
        """A wait_json predicate: this push's terminal ota/status."""
        return status.get("token") == (self.token if self.mode == "ext" else "") and \
            status.get("state") in TERMINAL_STATES

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._srv.close()
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def wait(self, timeout=15):
        if not self.done.wait(timeout):
            raise TimeoutError("the device never fetched the file")
        return self.sent

    def _run(self):
        end = time.monotonic() + self.deadline
        try:
            while time.monotonic() < end:
                self._srv.settimeout(max(0.1, end - time.monotonic()))
                try:
                    conn, _ = self._srv.accept()
                except OSError:
                    return  # deadline or closed
                with conn:
                    if self.mode == "ext" and not self._token_ok(conn):
                        self.rejected += 1
                        continue
                    conn.settimeout(10)
                    view = memoryview(self.serve)
                    for i in range(0, len(view), 4096):
                        conn.sendall(view[i:i + 4096])
                    self.sent = bytes(self.serve)
                    return
        except OSError as e:
            self.error = e
        finally:
            self.done.set()

    def _token_ok(self, conn):
        conn.settimeout(5)
        want = (self.token + "\n").encode()
        got = b""
        try:
            while len(got) < len(want):
                b = conn.recv(len(want) - len(got))
                if not b:
                    return False
                got += b
        except OSError:
            return False
        return got == want


def heartbeat_pred(**fields):
    """A wait_json predicate: an online heartbeat whose fields equal these values."""
    return lambda d: d.get("online") is True and all(d.get(k) == v for k, v in fields.items())


def set_input_pins(flash_dir, levels):
    """Hold simulated input pins at levels ({"0": 0} = GPIO0 low = button pressed)."""
    tmp = flash_dir / ".sim_pins.json.tmp"
    tmp.write_text(json.dumps({str(k): v for k, v in levels.items()}))
    tmp.replace(flash_dir / ".sim_pins.json")  # atomic: the device never reads half a file


def flash_listing(flash_dir):
    """{relative name: bytes} of every file on a simulated flash, dot-files included."""
    out = {}
    for p in sorted(flash_dir.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(flash_dir))] = p.read_bytes()
    return out


class Listener:
    """A TCP socket a trigger points at, counting the connections it sees (a rejected
    trigger must never lead to one)."""

    def __init__(self, port=0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
