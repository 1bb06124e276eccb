"""A real RabbitMQ node with its MQTT plugin on free loopback ports, for tests.

Issue 13: nothing may depend on one broker's quirks. RabbitMQ is a broker that clusters and
differs from mosquitto where it matters here: QoS 2 is served as QoS 1, retained messages are
not delivered to wildcard subscriptions, client ids are tracked cluster-wide (Raft).

The node runs as the current user without systemd: Debian's /usr/sbin wrappers switch to the
`rabbitmq` user and its /var/lib/rabbitmq, so /usr/lib/rabbitmq/bin/rabbitmq-server is run
directly, with every state folder, the Erlang cookie (HOME) and the configuration in one
temporary folder, a node name of its own, and its own epmd on a free port, started here in
the foreground, in the node's process group, so that stop() ends it with the node (an epmd
that the node started itself would run as a daemon, in a session of its own, and outlive it).
"""
import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion

from tests.support.mosquitto import free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"


def installed():
    return os.access(SERVER, os.X_OK) and os.access(EPMD, os.X_OK)


class RabbitMQ:
    """Starts one RabbitMQ node with rabbitmq_mqtt; `.port` is its MQTT port on 127.0.0.1."""

    def __init__(self, start_timeout=60.0):
        self.start_timeout = start_timeout
        self.port = self.amqp_port = self.dist_port = self.epmd_port = None
        self.node = None
        self.start_s = None  # seconds start() took (about 12 to 22 here)
        self.proc = self.epmd = None
        self._dir = None
        self._log = None

    @property
    def log_path(self):
        return Path(self._dir.name) / "rabbitmq.log"

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self):
        if not installed():
            raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        t0 = time.monotonic()
        self._dir = tempfile.TemporaryDirectory(prefix="rabbit-")
        d = Path(self._dir.name)
        try:
            self._start(d)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - t0
        return self

    def _start(self, d):
        self.port, self.amqp_port, self.dist_port, self.epmd_port = (free_port() for _ in range(4))
        self.node = "rabbit-test-%s@localhost" % secrets.token_hex(4)
        (d / "rabbitmq.conf").write_text(
            "listeners.tcp.default = 127.0.0.1:%d\n"
            "mqtt.listeners.tcp.default = 127.0.0.1:%d\n"
            "mqtt.allow_anonymous = true\n"
            # anonymous MQTT clients act as guest, whom RabbitMQ lets in from loopback only
            "mqtt.default_user = guest\n"
            "mqtt.default_pass = guest\n"
            "log.console = false\n"
            "log.file.level = info\n" % (self.amqp_port, self.port))
        (d / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (d / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        env = dict(
            os.environ,
            HOME=str(d),  # the Erlang cookie is written here
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(d / "plugins-expand"),
            RABBITMQ_PID_FILE=str(d / "rabbitmq.pid"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            # the distribution listener (clustering, rabbitmqctl) on loopback only
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        self._log = open(self.log_path, "wb")
        # One process group of their own for epmd and the node (the script, erl, beam):
        # stop() signals it whole. (setpgid, not a new session: a process may only join a
        # group of its own session.)
        self.epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port)], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=lambda: os.setpgid(0, 0))
        group = self.epmd.pid
        self.proc = subprocess.Popen([SERVER], env=env, cwd=d, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=lambda: os.setpgid(0, group))

    def _wait_ready(self):
        """Until a real MQTT CONNECT is accepted: the port opens before the plugin is ready."""
        end = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s: %s"
                                   % (self.proc.returncode, self.log_text()[-1500:]))
            if self._mqtt_connects():
                return
            if time.monotonic() > end:
                raise TimeoutError("RabbitMQ's MQTT port %d accepted no CONNECT within %ss: %s"
                                   % (self.port, self.start_timeout, self.log_text()[-1500:]))
            time.sleep(0.2)

    def _mqtt_connects(self):
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id="ready-%s" % secrets.token_hex(4))
        try:
            client.connect("127.0.0.1", self.port, keepalive=10)
        except OSError:
            return False
        try:
            accepted = []
            client.on_connect = lambda c, u, f, rc, p: accepted.append(not rc.is_failure)
            end = time.monotonic() + 2
            while not accepted and time.monotonic() < end:
                if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    return False
            return accepted == [True]
        finally:
            client.disconnect()  # unthreaded, paho writes it at once and closes the socket

    def stop(self):
        """SIGTERM to the group: RabbitMQ shuts down cleanly (about a second), epmd ends;
        SIGKILL for whatever is left after 30 s. No beam or epmd outlives it."""
        if self.epmd is not None:
            group = self.epmd.pid
            procs = [p for p in (self.proc, self.epmd) if p is not None]
            _signal_group(group, signal.SIGTERM)
            end = time.monotonic() + 30
            for proc in procs:
                try:
                    proc.wait(max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            while _group_alive(group) and time.monotonic() < end:  # beam, the script's child
                time.sleep(0.05)
            if _group_alive(group):
                _signal_group(group, signal.SIGKILL)
                for proc in procs:
                    proc.wait()
            self.proc = self.epmd = None
        if self._log:
            self._log.close()
            self._log = None
        if self._dir:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _signal_group(pgid, sig):
    """True if some process of the group was there to take it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def _group_alive(pgid):
    return _signal_group(pgid, 0)
