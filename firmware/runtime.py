# The device's running part (loader.main() starts it): the run loop, plugin dispatch
# (plugins.py), the OTA hijack of ID/OTA (ota_push.py) and probation; the link (Wi-Fi, the
# MQTT session, the heartbeat) is link.py. The plugin API is documented at the top of
# plugins.py; the contract with the server is docs/protocol.md. Memory: loader.main() loads
# this, link and the OTA code at boot; the update journal's confirm and report (ota_verdict)
# and a bundle's manifest (ota_bundle) are loaded only when needed.
import gc
import time
from time import ticks_ms, ticks_diff

import link
from link import dumps


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
        self.files = files  # JSON text, or None: on the flash (startup.file_hashes)
        self.t0 = time.time()  # for the uptime
        self.ms0 = ticks_ms()  # for probation: a clock set by NTP must not end it early
        self.features = features or ["ext", "bundle"]
        # the update journal; on probation until confirmed (docs/safety.md)
        self.j = journal
        self.probation = bool(journal) and journal["state"] == "probation"
        import sys

        self.guard = sys.modules.get("probation")  # running main while on probation
        self.wdt = getattr(self.guard, "wdt", None)

    def start(self):
        import plugins

        self.plugins = plugins.Host(self)
        gc.collect()
        print("boot %d as %s fw %s" % (self.boot, self.cfg["id"], link.FW))

    def run(self):
        # Start, then keep the link up forever; every OSError comes back here.
        self.start()
        delay = 1
        while True:
            try:
                link.wifi(self)
                link.connect(self)
                if self.j and self.j["state"] in ("confirmed", "rolled_back"):
                    self._verdict(False)
                delay = 1
                self._serve()
            except OSError as e:
                print("link down: %r - retry in %d s" % (e, delay))
                n = self.cfg["confirm_after"] * 10  # seconds: 300 by default
                if self.probation and self.guard and ticks_diff(ticks_ms(), self.ms0) > n * 1000:
                    # healthy means connected: new files that never reach the broker fail
                    self.guard.crash("no MQTT link in %d s: %r" % (n, e))
                    import machine

                    machine.reset()
            if self.mq:
                self.mq.close()
                self.mq = None
            self._idle(delay * 1000)
            delay = min(delay * 2, 30)

    def _serve(self):
        mq = self.mq
        every = self.cfg["heartbeat"] * 1000
        last = ticks_ms()
        while True:
            m = mq.check_msg(50)
            if m and m[0] == self.t_ota:  # hijacked: plugins never see it
                self._ota(m[1])
            elif m:
                self.plugins.on_set(m[0], m[1])
            if self.link_error:
                raise self.link_error
            mq.keep_alive()
            self.plugins.poll()
            self.plugins.publish_dirty()
            now = ticks_ms()
            if ticks_diff(now, last) >= every:
                last = now
                link.heartbeat(self)
            if self.wdt:
                self.wdt.feed()
            if self.probation and ticks_diff(now, self.ms0) >= self.cfg["confirm_after"] * 1000:
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

    def _verdict(self, confirm):
        # confirm the update on probation (confirm) and/or report its outcome (ota_verdict,
        # loaded for this only: a device without a journal never compiles it)
        import sys
        import ota_verdict

        ota_verdict.run(self, confirm)
        del sys.modules["ota_verdict"], sys.modules["journal"]
        gc.collect()
        link.heartbeat(self)  # the journal is gone (and its code): show it

    # -- OTA --

    def report(self, d):
        if d["state"] == "failed":
            print("OTA failed:", d["file"], d["reason"], d["detail"])
        elif self.debug:
            print("OTA", d["state"], d["file"])
        try:
            self.mq.publish(self.t_ota_status, dumps(d).encode())
        except OSError as e:
            # finish the push anyway; the main loop reconnects afterwards
            self.link_error = e
        except MemoryError:
            # a full heap loses this report, not the device: the server's push times out
            gc.collect()
            print("OTA report lost: no memory")

    def _ota(self, msg):
        # A heap too full to load ota_push (loader.main() loaded it at boot) or to parse the
        # trigger: the push fails with "no memory", named from the raw trigger, and the
        # runtime keeps running.
        try:
            import ota_push

            ota_push.run(self, msg)  # returns when the board stays up
        except MemoryError:
            gc.collect()
            f = msg.split(b"|")
            try:
                tok = f[5].decode() if len(f) > 5 and len(f[5]) == 32 else ""
                name = f[2].decode() if len(f) > 2 else ""
            except UnicodeError:  # not parsed yet: the bytes may be anything
                tok = name = ""
            self.report({"token": tok, "state": "failed", "file": name,
                         "reason": "no memory", "detail": "the heap is too full or fragmented"})
