# DCC-OTA device runtime: settings, Wi-Fi, the MQTT link, heartbeat, OTA and plugins.
# The contract with the server is docs/protocol.md; nothing here runs at import.
#
# Plugin API. A plugin is a module on flash named in the settings' "plugins" list with
#     create(ctx, cfg) -> plugin object        cfg = settings[<module name>] or {}
# The object has
#     name             str, the topic level: commands arrive on ID/<name>/set
#     state()          a JSON-able dict, published retained on ID/<name>/state and
#                      listed under "plugins" in the heartbeat
#     on_set(payload)  one command (bytes, at most 1024) from ID/<name>/set
#     poll()           called about every 50 ms, online or not; must return quickly
# and ctx offers
#     ctx.publish_state()  queue a publish of state() (done from the main loop)
#     ctx.log(*args)       print one line prefixed with the plugin name
#     ctx.debug            the settings' "debug" flag
# Exceptions from plugin code are logged and never stop the runtime. A plugin knows
# nothing about OTA, Wi-Fi or MQTT reconnects: its state is published again at connect.
#
# Memory (simulator, 64-bit, -X heapsize=38wK = an ESP8266's 38 KB): about 43 KB of 75 KB
# free after boot with the lamp plugin; a push needs about 3 KB more (1 KB buffer, socket,
# SHA-1, file). Boot and a 200 KB push work down to 22wK.
# Memory: modules compile on the device, and compiling needs several times the RAM its
# bytecode keeps, so the order matters: this module first (empty heap), then the MQTT
# client (imported below), then startup (used once and unloaded), then the OTA receiver
# and the plugins. See main().
import gc
import json
import time
from time import ticks_ms, ticks_diff

from mqtt_client import MQTTClient

gc.collect()
ota_receiver = None  # imported by main()

FW = "0.1.0"
_REBOOTING = b'{"online":false,"reason":"rebooting"}'


def log(*args):
    print(*args)


def dumps(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # older MicroPython without separators
        return json.dumps(obj)


class _Ctx:
    # What a plugin sees of the runtime.

    def __init__(self, rt, name):
        self._rt = rt
        self.name = name
        self.debug = rt.debug
        self.plugin = None
        self.topic = None

    def publish_state(self):
        if self not in self._rt.dirty:
            self._rt.dirty.append(self)

    def log(self, *args):
        print(self.name + ":", *args)


class Runtime:
    def __init__(self, cfg, boot=0, files=None):
        self.cfg = cfg
        self.debug = cfg["debug"]
        p = cfg["id"].encode()
        self.prefix = p
        self.t_status = p + b"/status"
        self.t_ota = p + b"/OTA"
        self.t_ota_status = p + b"/ota/status"
        self.plugins = []  # their _Ctx, with .plugin and .topic (the state topic)
        self.set_topics = {}  # b"ID/<name>/set" -> _Ctx
        self.dirty = []
        self.mq = None
        self.wlan = None
        self.link_error = None
        self.boot = boot
        self.files = files or {}
        self.t0 = time.time()

    # -- start-up --

    def start(self):
        for name in self.cfg["plugins"]:
            ctx = _Ctx(self, name)
            try:
                ctx.plugin = __import__(name).create(ctx, self.cfg.get(name) or {})
            except Exception as e:
                log("plugin", name, "failed to load:", repr(e))
                continue
            pn = ctx.plugin.name.encode()
            ctx.topic = self.prefix + b"/" + pn + b"/state"
            self.set_topics[self.prefix + b"/" + pn + b"/set"] = ctx
            self.plugins.append(ctx)
            gc.collect()
        log("boot", self.boot, "as", self.cfg["id"], "fw", FW, "files", len(self.files))

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
                        c["password"].encode(), c["keepalive"])
        mq.set_last_will(self.t_status, b'{"online":false}', True)
        self.mq = mq
        mq.connect()
        mq.subscribe(self.t_ota)
        mq.subscribe(self.prefix + b"/+/set")
        self.link_error = None
        log("connected to %s:%d" % (c["broker"], c["port"]))
        self.heartbeat()
        for ctx in self.plugins:
            self._publish_state(ctx)

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
            self._poll_plugins()
            while self.dirty:
                self._publish_state(self.dirty.pop())
            now = ticks_ms()
            if ticks_diff(now, last) >= every:
                last = now
                self.heartbeat()

    def _idle(self, ms):
        # wait while keeping plugins (buttons) alive
        t = ticks_ms()
        while ticks_diff(ticks_ms(), t) < ms:
            time.sleep_ms(50)
            self._poll_plugins()

    def _dispatch(self, topic, msg):
        if topic == self.t_ota:  # hijacked: plugins never see it
            self._ota(msg)
            return
        ctx = self.set_topics.get(topic)
        if ctx is None:
            if self.debug:
                log("ignored", topic)
            return
        try:
            ctx.plugin.on_set(msg)
        except Exception as e:
            log(ctx.name, "on_set error:", repr(e))

    def _poll_plugins(self):
        for ctx in self.plugins:
            try:
                ctx.plugin.poll()
            except Exception as e:
                log(ctx.name, "poll error:", repr(e))

    def _state(self, ctx):
        try:
            return ctx.plugin.state()
        except Exception as e:
            log(ctx.name, "state error:", repr(e))
            return {}

    def _publish_state(self, ctx):
        self.mq.publish(ctx.topic, dumps(self._state(ctx)).encode(), True)

    def heartbeat(self):
        gc.collect()
        free = gc.mem_free()
        pl = {}
        for ctx in self.plugins:
            pl[ctx.plugin.name] = self._state(ctx)
        hb = {"online": True, "fw": FW, "uptime": int(time.time() - self.t0), "boot": self.boot,
              "mem_free": free, "interval": self.cfg["heartbeat"], "features": ["ext"],
              "files": self.files, "plugins": pl}
        msg = dumps(hb).encode()
        hb = pl = None
        self.mq.publish(self.t_status, msg, True)
        if self.debug:
            log("heartbeat", free)

    # -- OTA --

    def _report(self, d):
        if d["state"] == "failed":
            log("OTA failed:", d["file"], d["reason"], d["detail"])
        elif self.debug:
            log("OTA", d["state"], d["file"])
        try:
            self.mq.publish(self.t_ota_status, dumps(d).encode())
        except OSError as e:
            # finish the push anyway; the main loop reconnects afterwards
            self.link_error = e

    def _ota(self, msg):
        gc.collect()
        t = ota_receiver.run(msg, self._report)
        gc.collect()
        if t is None:
            return
        log("OTA done:", t.name, "- rebooting")
        self._report({"token": t.token, "state": "rebooting", "file": t.name})
        try:
            self.mq.publish(self.t_status, _REBOOTING, True)
        except OSError:
            pass
        self.mq.disconnect()
        time.sleep_ms(100)  # let the stack flush before the reset
        import machine

        machine.reset()


def main():
    global ota_receiver
    import sys
    import startup

    cfg = startup.load_settings()
    boot = startup.bump_boot()
    files = startup.file_hashes()
    del sys.modules["startup"], startup
    gc.collect()
    import ota_receiver

    gc.collect()
    Runtime(cfg, boot, files).run()
