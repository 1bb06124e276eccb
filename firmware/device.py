# The device's running part (runtime.main() starts it): the Wi-Fi and MQTT link, heartbeat,
# plugin dispatch (plugins.py), the OTA hijack of ID/OTA (ota_push.py) and probation. The
# plugin API is documented at the top of runtime.py; the contract with the server is
# docs/protocol.md. Memory: runtime.main() loads this and the OTA code at boot, on an
# empty heap; the update journal's confirm and report (ota_verdict) and a bundle's manifest
# (ota_bundle) are loaded only when needed.
import gc
import json
import time
from time import ticks_ms, ticks_diff

import mqtt_client

FW = "0.1.0"
_REBOOTING = b'{"online":false,"reason":"rebooting"}'
MQTTClient = mqtt_client.MQTTClient  # a module global: the benchmarks swap it


def log(*args):
    print(*args)


def dumps(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # older MicroPython without separators
        return json.dumps(obj)


class Runtime:
    def __init__(self, cfg, boot=0, files=None, journal=None, features=None):
        self.cfg = cfg
        self.debug = cfg["debug"]
        p = cfg["id"].encode()
        self.prefix = p
        self.t_status = p + b"/status"
        self.t_ota = p + b"/OTA"
        self.t_ota_status = p + b"/ota/status"
        self.plugins = None  # plugins.Host, made by start()
        self.mq = None
        self.wlan = None
        self.link_error = None
        self.boot = boot
        self.files = files or b"{}"  # JSON text (startup.file_hashes)
        self.t0 = time.time()
        self.ms0 = ticks_ms()
        self.features = features or ["ext", "bundle"]
        # the update journal; on probation until confirmed (docs/safety.md)
        self.j = journal
        self.probation = bool(journal) and journal["state"] == "probation"
        self.beat = False  # a heartbeat went out on this connection
        import sys

        self.guard = sys.modules.get("probation")  # running main while on probation
        self.wdt = getattr(self.guard, "wdt", None)

    # -- start-up --

    def start(self):
        import plugins

        self.plugins = plugins.Host(self)
        gc.collect()
        log("boot", self.boot, "as", self.cfg["id"], "fw", FW, "files", self.files.count(b'":"'))

    def run(self):
        # Start, then keep the link up forever; every OSError comes back here.
        self.start()
        delay = 1
        while True:
            try:
                self._wifi()
                self._connect()
                delay = 1
                self._serve()
            except OSError as e:
                log("link down:", repr(e), "- retry in", delay, "s")
            if self.mq:
                self.mq.close()
                self.mq = None
            self._idle(delay * 1000)
            delay = min(delay * 2, 30)

    # -- the link --

    def _wifi(self):
        import network

        if self.wlan is None:
            self.wlan = network.WLAN(network.STA_IF)
            self.wlan.active(True)
        w = self.wlan
        if w.isconnected():
            return
        if self.cfg["wifi_ssid"]:
            w.connect(self.cfg["wifi_ssid"], self.cfg["wifi_password"])
        t = ticks_ms()
        while not w.isconnected():
            if ticks_diff(ticks_ms(), t) > 20000:
                raise OSError("no Wi-Fi")
            self._idle(100)
        log("wifi up", w.ifconfig()[0])

    def _connect(self):
        c = self.cfg
        mq = MQTTClient(self.prefix, c["broker"], c["port"], c["user"].encode(),
                        c["password"].encode(), c["keepalive"], c.get("tls", False),
                        c.get("ca") or None)
        mq.set_last_will(self.t_status, b'{"online":false}', True)
        self.mq = mq
        mq.connect()
        mq.subscribe(self.t_ota)
        mq.subscribe(self.prefix + b"/+/set")
        self.link_error = None
        log("connected to %s:%d" % (c["broker"], c["port"]))
        self.beat = False
        self.heartbeat()
        self.plugins.publish_all()
        if self.j and self.j["state"] in ("confirmed", "rolled_back"):
            self._verdict(False)

    def _serve(self):
        mq = self.mq
        every = self.cfg["heartbeat"] * 1000
        last = ticks_ms()
        while True:
            m = mq.check_msg(50)
            if m:
                self._dispatch(m[0], m[1])
            if self.link_error:
                raise self.link_error
            mq.keep_alive()
            self.plugins.poll()
            self.plugins.publish_dirty()
            now = ticks_ms()
            if ticks_diff(now, last) >= every:
                last = now
                self.heartbeat()
            if self.wdt:
                self.wdt.feed()
            if self.probation and self.beat and ticks_diff(
                    now, self.ms0) >= self.cfg["confirm_after"] * 1000:
                self._verdict(True)

    def _idle(self, ms):
        # wait while keeping plugins (buttons) alive
        t = ticks_ms()
        while ticks_diff(ticks_ms(), t) < ms:
            time.sleep_ms(50)
            if self.plugins:
                self.plugins.poll()
            if self.wdt:
                self.wdt.feed()

    def _dispatch(self, topic, msg):
        if topic == self.t_ota:  # hijacked: plugins never see it
            self._ota(msg)
            return
        self.plugins.on_set(topic, msg)

    def _verdict(self, confirm):
        # confirm the update on probation (confirm) and/or report its outcome (ota_verdict,
        # loaded for this only: a device without a journal never compiles it)
        import sys
        import ota_verdict

        ota_verdict.run(self, confirm)
        del sys.modules["ota_verdict"]
        gc.collect()
        self.heartbeat()  # the journal is gone (and its code): show it

    def heartbeat(self):
        gc.collect()
        free = gc.mem_free()
        pl = self.plugins.states()
        hb = {"online": True, "fw": FW, "uptime": int(time.time() - self.t0), "boot": self.boot,
              "mem_free": free, "interval": self.cfg["heartbeat"], "features": self.features,
              "plugins": pl}
        if self.probation:
            hb["probation"] = True
        msg = dumps(hb).encode()
        hb = pl = None
        # in parts: the file list (a kilobyte on a full flash) is never copied
        self.mq.publish(self.t_status, (memoryview(msg)[:-1], b',"files":', self.files, b"}"),
                        True)
        self.beat = True
        if self.debug:
            log("heartbeat", free)

    # -- OTA --

    def report(self, d):
        if d["state"] == "failed":
            log("OTA failed:", d["file"], d["reason"], d["detail"])
        elif self.debug:
            log("OTA", d["state"], d["file"])
        try:
            self.mq.publish(self.t_ota_status, dumps(d).encode())
        except OSError as e:
            # finish the push anyway; the main loop reconnects afterwards
            self.link_error = e
        except MemoryError:
            # a full heap loses this report, not the device: the server's push times out
            gc.collect()
            log("OTA report lost: no memory")

    def _ota(self, msg):
        # runtime.main() loaded ota_push at boot; should it be missing, loading it now may
        # find no room: the push then fails with "no memory" and the runtime keeps running
        try:
            import ota_push

            ota_push.run(self, msg)  # returns when the board stays up
        except MemoryError:
            f = msg.split(b"|")
            gc.collect()
            self.report({"token": f[5].decode() if len(f) > 5 and len(f[5]) == 32 else "",
                         "state": "failed", "file": f[2].decode() if len(f) > 2 else "",
                         "reason": "no memory", "detail": "no heap to load the receiver"})
