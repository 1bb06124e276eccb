"""The MQTT bus (flask-mqtt): heartbeats and push status in; triggers and plugin commands out."""
import logging
import secrets
import threading
import types
import warnings

from flask_mqtt import Mqtt

log = logging.getLogger(__name__)

# Topic filters the server listens to, and the kind of message each level pattern is.
SUBSCRIPTIONS = ("+/status", "+/ota/status", "+/+/state")


class BusError(Exception):
    """The broker cannot be reached, or it refused a message."""


_CONNACK = {1: "unsupported protocol version", 2: "client id rejected", 3: "broker unavailable",
            4: "bad user name or password (MQTT_USERNAME, MQTT_PASSWORD)",
            5: "not authorised (MQTT_USERNAME, MQTT_PASSWORD)"}


def classify(topic):
    """(kind, device, plugin) for a topic the server listens to; kind is None for others."""
    parts = topic.split("/")
    if len(parts) == 2 and parts[1] == "status":
        return "status", parts[0], None
    if len(parts) == 3 and parts[1] == "ota" and parts[2] == "status":
        return "ota_status", parts[0], None
    if len(parts) == 3 and parts[2] == "state":
        return "plugin_state", parts[0], parts[1]
    return None, None, None


class Bus:
    """One flask-mqtt client per process, with a client id no other process uses.

    flask-mqtt runs handlers on paho's network thread, where there is no app context: each
    handler gets one pushed here. paho stops its loop if a callback raises, so the boundary
    below logs any exception from a handler and keeps the bus alive.
    """

    def __init__(self, app, client_id, host, port):
        self.app = app
        self.client_id = client_id
        self.host, self.port = host, port
        self.handlers = {}
        self.connected = threading.Event()
        self.refused = None  # why the broker last refused us (bad credentials...), if it did
        self._sync_topic = "dcc-ota/sync/%s" % client_id
        self._sync_waiters = {}
        self._followed = ()  # exact status topics (follow), subscribed again on each connect
        self._mqtt = None
        self._thread_ctx = None

    def on(self, kind, handler):
        """Route messages of `kind` ('status', 'ota_status', 'plugin_state') to handler."""
        self.handlers[kind] = handler

    def start(self):
        with warnings.catch_warnings():
            # flask-mqtt asks paho for callback API version 1, which paho 2 warns about.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Async connect: a broker that is down at start must not kill the worker; paho's
            # loop thread then keeps reconnecting with back-off.
            mqtt = Mqtt(connect_async=True)
        mqtt.client.reconnect_delay_set(min_delay=1, max_delay=30)
        mqtt.client.on_message = self._on_message  # before init_app: it connects at once
        mqtt.on_connect()(self._on_connect)
        mqtt.on_disconnect()(self._on_disconnect)
        self._mqtt = mqtt
        log.info("MQTT: connecting to %s as %s", self.where(), self.client_id)
        # flask-mqtt reads its settings from what it is given as the app's config: the MQTT_*
        # keys, with the broker and client id this process resolved (the app's config is
        # never rewritten)
        settings = {k: v for k, v in self.app.config.items() if k.startswith("MQTT_")}
        settings.update(MQTT_BROKER_URL=self.host, MQTT_BROKER_PORT=self.port,
                        MQTT_CLIENT_ID=self.client_id)
        mqtt.init_app(types.SimpleNamespace(config=settings))

    def stop(self):
        if self._mqtt is not None:
            self._mqtt.client.disconnect()
            self._mqtt.client.loop_stop()
            self.connected.clear()

    def where(self):
        return "%s:%s" % (self.host, self.port)

    def wait_connected(self, timeout):
        return self.connected.wait(timeout)

    def local_address(self):
        """The address of our end of the broker connection (None if not connected)."""
        sock = self._mqtt.client.socket() if self._mqtt else None
        try:
            return sock.getsockname()[0] if sock else None
        except OSError:
            return None

    def publish(self, topic, payload, retain=False):
        if not self.connected.is_set():
            raise BusError("not connected to the MQTT broker at %s" % self.where())
        result, _mid = self._mqtt.publish(topic, payload, qos=0, retain=retain)
        if result != 0:
            raise BusError("the MQTT client could not send to %s (error %d)" % (topic, result))

    def follow(self, device):
        """Also subscribe to DEVICE/status by its exact name, for its retained heartbeat.

        A broker need not deliver retained messages to a wildcard filter: RabbitMQ (3.x) sends
        none to `+/status`, only to an exact topic. A process that has no other way to know the
        device (the CLI without a server) follows it, then calls sync().
        """
        topic = "%s/status" % device
        if topic not in self._followed:
            self._followed += (topic,)
            if self.connected.is_set():
                self._mqtt.client.subscribe(topic, 0)

    def sync(self, timeout=5.0):
        """Wait until every message the broker sent before now (retained ones too) is handled.

        A message to our own topic comes back after everything queued before it.
        """
        nonce = secrets.token_hex(8)
        done = self._sync_waiters[nonce] = threading.Event()
        try:
            self.publish(self._sync_topic, nonce)
            return done.wait(timeout)
        finally:
            self._sync_waiters.pop(nonce, None)

    # -- paho's thread --------------------------------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, rc):
        if rc != 0:
            self.refused = _CONNACK.get(rc, "refused (code %s)" % rc)
            log.warning("MQTT: broker at %s refused the connection: %s", self.where(), self.refused)
            return
        self.refused = None
        client.subscribe([(t, 0) for t in SUBSCRIPTIONS + self._followed]
                         + [(self._sync_topic, 0)])
        log.info("MQTT: connected to %s", self.where())
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, rc):
        self.connected.clear()
        if rc != 0:
            log.warning("MQTT: lost the broker at %s (rc=%s); reconnecting", self.where(), rc)

    def _on_message(self, _client, _userdata, message):
        if message.topic == self._sync_topic:
            waiter = self._sync_waiters.get(message.payload.decode("ascii", "replace"))
            if waiter:
                waiter.set()
            return
        kind, device, plugin = classify(message.topic)
        handler = self.handlers.get(kind)
        if handler is None:
            return
        try:
            if self._thread_ctx is None:
                # paho calls us on one long-lived thread: one app context, and so one database
                # connection, serves every message instead of a new one for each.
                self._thread_ctx = self.app.app_context()
                self._thread_ctx.push()
            if plugin is None:
                handler(device, message.payload)
            else:
                handler(device, plugin, message.payload)
        except Exception:  # the boundary: one bad message must not stop the bus
            log.exception("MQTT: handling %s failed", message.topic)
