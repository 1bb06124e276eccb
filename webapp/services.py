"""The long-lived parts (broker, bus, pushes), started explicitly and once per process."""
import logging
import os
import secrets
import socket

from . import extension
from .broker import EmbeddedBroker
from .bus import Bus
from .db import get_db
from .devices import parse_heartbeat
from .names import is_device_name
from .payloads import load_object
from .push.trigger import parse_device_status

MAX_PLUGIN_STATE = 2048

log = logging.getLogger(__name__)


def broker_address(cfg):
    """(host, port) of the MQTT broker this process talks to: MQTT_BROKER_URL and
    MQTT_BROKER_PORT, or without a URL the embedded broker's port on this host (the server
    runs it; a CLI run uses the server's)."""
    if cfg.get("MQTT_BROKER_URL"):
        return cfg["MQTT_BROKER_URL"], cfg["MQTT_BROKER_PORT"]
    return "127.0.0.1", cfg["OTA_EMBEDDED_BROKER_PORT"]


class Services:
    """The DccOta's `services` once started (start_services); stop() undoes start()."""

    def __init__(self, app, role):
        ext = extension.of(app)
        self.app = app
        self.role = role
        self.registry, self.pushes, self.rollouts = ext.registry, ext.pushes, ext.rollouts
        self.broker = None
        # No two processes may share a client id: the broker would drop one for the other.
        client_id = app.config.get("MQTT_CLIENT_ID") or "dcc-ota-%s-%s" % (role, socket.gethostname())
        client_id = "%s-%d-%s" % (client_id[:40], os.getpid(), secrets.token_hex(3))
        self.bus = Bus(app, client_id, *broker_address(app.config))
        self.bus.on("status", self._on_status)
        self.bus.on("ota_status", self._on_ota_status)
        self.bus.on("plugin_state", self._on_plugin_state)

    def start(self):
        cfg = self.app.config
        if not cfg.get("MQTT_BROKER_URL") and self.role == "server":
            self.broker = EmbeddedBroker(cfg["OTA_EMBEDDED_BROKER_BIND"],
                                         cfg["OTA_EMBEDDED_BROKER_PORT"])
            self.broker.start()
        self.pushes.start(self.bus, adopt=self.role == "server")
        self.bus.start()
        if self.role == "server":
            with self.app.app_context():
                self.pushes.resume(get_db())
            self.rollouts.start()  # after the resume: rollouts follow the pushes it adopted
        return self

    def stop(self):
        if self.role == "server":
            self.rollouts.stop()
        self.pushes.stop()
        self.bus.stop()
        if self.broker:
            self.broker.stop()

    def _on_status(self, device, payload):
        heartbeat = _parsed("a heartbeat", device, parse_heartbeat, payload)
        if heartbeat is not None:
            self.registry.record(get_db(), device, heartbeat)
            self.pushes.on_heartbeat(device, heartbeat)

    def _on_ota_status(self, device, payload):
        status = _parsed("an OTA status", device, parse_device_status, payload)
        if status is not None:
            # kept for whoever adopts a push this process does not run (push/run.py)
            self.registry.record_ota_status(get_db(), device, status)
            self.pushes.on_device_status(device, status)

    def _on_plugin_state(self, device, plugin, payload):
        state = _parsed("%s/state" % plugin[:80], device, lambda p: load_object(
            p, MAX_PLUGIN_STATE, "plugin state"), payload) if is_device_name(plugin) else None
        if state is not None:
            self.registry.record_plugin_state(get_db(), device, plugin, state)


def _parsed(what, device, parse, payload):
    """parse(payload) of a device's message, or None after one log line saying why not (a
    name no device can have, a payload that does not parse)."""
    if not is_device_name(device):
        log.warning("ignoring %s from a device named %r: not a valid name", what, device[:80])
        return None
    try:
        return parse(payload)
    except ValueError as exc:
        log.warning("ignoring %s from %s: %s", what, device, exc)
        return None


def start_services(app, role="server"):
    """Start this process's services once; later calls return the running ones."""
    ext = extension.of(app)
    if ext.services is None:
        ext.services = Services(app, role).start()
    return ext.services


def stop_services(app):
    ext = extension.of(app)
    services, ext.services = ext.services, None
    if services is not None:
        services.stop()
