"""A real mosquitto broker on a free loopback port, for tests and benchmarks."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, deadline_s=10.0):
    """Return once host:port accepts TCP connections; raise TimeoutError after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError("nothing listening on %s:%d" % (host, port))
            time.sleep(0.05)


class Mosquitto:
    """Starts `mosquitto` with its own config: loopback only, anonymous, TCP_NODELAY."""

    def __init__(self, nodelay=True, port=None, listener_options="", anonymous=True):
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.nodelay = nodelay
        self.port = port
        self.listener_options = listener_options  # lines under the listener (TLS, passwords)
        self.anonymous = anonymous
        self.proc = None
        self._dir = None

    def start(self):
        if not Path(self.binary).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        # A free port can be taken between free_port() and mosquitto's bind (by a device's
        # transfer socket, say): then mosquitto exits, and another port is tried.
        chosen = self.port
        for _ in range(3 if chosen is None else 1):
            self.port = chosen or free_port()
            self._start()
            if self.proc.poll() is None:
                return self
            self.log.close()
            why = (Path(self._dir.name) / "mosquitto.log").read_text(errors="replace")
            self.stop()
        raise RuntimeError("mosquitto did not start on port %d: %s" % (self.port, why[-500:]))

    def _start(self):
        self._dir = tempfile.TemporaryDirectory(prefix="mosq-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        # Started as root, mosquitto drops to the `mosquitto` user, which cannot read the
        # test's private temporary folders (certificates, password files): stay root.
        conf.write_text(
            ("user root\n" if os.geteuid() == 0 else "") +
            "per_listener_settings true\n"
            "listener %d 127.0.0.1\n"
            "allow_anonymous %s\n"
            "%s\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n"
            "set_tcp_nodelay %s\n" % (self.port, "true" if self.anonymous else "false",
                                       self.listener_options, "true" if self.nodelay else "false")
        )
        self.log = open(Path(self._dir.name) / "mosquitto.log", "wb")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            if self.proc.poll() is None:
                raise
        try:  # what answered may be the port's other owner: mosquitto then exits at once
            self.proc.wait(0.2)
        except subprocess.TimeoutExpired:
            pass

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
        if self._dir:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
