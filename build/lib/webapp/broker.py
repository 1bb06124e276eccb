"""The embedded MQTT broker (amqtt), for a zero-setup start when no MQTT_BROKER_URL is set."""
import asyncio
import logging
import threading

log = logging.getLogger(__name__)


class BrokerError(Exception):
    """The embedded broker could not start (most often: the port is taken)."""


class EmbeddedBroker:
    """amqtt in a thread of its own, with its own event loop.

    amqtt never enforces keepalive, so a device that goes silent gets no last will here: the
    device registry marks devices offline from missed heartbeats instead (see devices.py).
    asyncio sets TCP_NODELAY on every connection, so small messages to MicroPython clients are
    not held back by delayed ACKs.
    """

    def __init__(self, bind="0.0.0.0", port=1883):
        self.bind, self.port = bind, port
        self._loop = None
        self._broker = None
        self._thread = None
        self._ready = threading.Event()
        self._error = None

    def start(self, timeout=10):
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise BrokerError("the embedded MQTT broker did not start within %ss" % timeout)
        if self._error:
            raise BrokerError("the embedded MQTT broker cannot listen on %s:%d (%s); set "
                              "OTA_EMBEDDED_BROKER_PORT, or MQTT_BROKER_URL to use another broker"
                              % (self.bind, self.port, self._error))
        log.info("embedded MQTT broker listening on %s:%d", self.bind, self.port)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._start())
        except Exception as exc:  # reported to start() and re-raised there as BrokerError
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._broker.shutdown())
        self._loop.close()

    async def _start(self):
        from amqtt.broker import Broker  # heavy import, only when the broker is wanted

        # Built inside the running loop: amqtt binds to the loop it was created in.
        self._broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (self.bind, self.port)}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        })
        await self._broker.start()

    def stop(self):
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
