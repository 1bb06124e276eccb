# The device's running part (loader.main() starts it): the run loop, plugin dispatch
# (plugins.py), the OTA hijack of ID/OTA (ota_push.py), the heartbeat's contents and
# probation; the link (Wi-Fi, the MQTT session) is link.Link. The plugin API is documented at
# the top of plugins.py; the contract with the server is docs/protocol.md. Memory:
# loader.main() loads this, link and the OTA code at boot; the update journal's confirm and
# report (ota_verdict) and a bundle's manifest (ota_bundle) are loaded only when needed.
import gc
import time
from time import ticks_ms, ticks_diff

from link import FW, Link, dumps

FILES = ".files.json"  # the heartbeat's "files", written at boot (startup.file_hashes)


class Runtime:
    def __init__(self, cfg, boot=0, files=None, journal=None, features=None):
        self.cfg = cfg
        self.debug = cfg["debug"]
        self.link = Link(cfg, self._idle)
        self.t_ota_status = self.link.prefix + b"/ota/status"
        self.plugins = None  # plugins.Host, made by run()
        self.boot = boot
        self.files = files  # JSON text, or None: on the flash (startup.file_hashes)
        self.t0 = time.time()  # for the uptime
        self.ms0 = ticks_ms()  # for probation: a clock set by NTP must not end it early
        self.features = features or ["ext", "bundle"]
        # the update journal as read at boot (it exists while this is not None); on
        # probation until confirmed (docs/safety.md)
        self.j = journal
        self.probation = bool(journal) and journal["state"] == "probation"
        import sys

        self.guard = sys.modules.get("probation")  # running main while on probation
        self.wdt = getattr(self.guard, "wdt", None)

    def run(self):
        # Start the plugins, then keep the link up forever; every OSError comes back here.
        import plugins

        self.plugins = plugins.Host(self.cfg, self.link, self.crash)
        gc.collect()
        print("boot %d as %s fw %s" % (self.boot, self.cfg["id"], FW))
        link = self.link
        delay = 1
        while True:
            try:
                link.connect()
                self.heartbeat()
                self.plugins.publish_all()
                if self.j and self.j["state"] in ("confirmed", "rolled_back"):
                    self._verdict(False)
                delay = 1
                self._serve()
            except OSError as e:
                print("link down: %r - retry in %d s" % (e, delay))
                n = self.cfg["confirm_after"] * 10  # seconds: 300 by default
                if self.probation and ticks_diff(ticks_ms(), self.ms0) > n * 1000:
                    # healthy means connected: new files that never reach the broker fail
                    self.crash("no MQTT link in %d s: %r" % (n, e))
            link.close()
            self._idle(delay * 1000)
            delay = min(delay * 2, 30)

    def _serve(self):
        link = self.link
        every = self.cfg["heartbeat"] * 1000
        last = ticks_ms()
        while True:
            m = link.poll()
            if m and m[0] == link.t_ota:  # hijacked: plugins never see it
                self._ota(m[1])
            elif m:
                self.plugins.on_set(m[0], m[1])
            self.plugins.poll()
            self.plugins.publish_dirty()
            now = ticks_ms()
            if ticks_diff(now, last) >= every:
                last = now
                self.heartbeat()
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

    def heartbeat(self):
        from sys import implementation

        gc.collect()
        # the MicroPython release and the .mpy format it loads, as sys.implementation holds
        # them (in ROM: nothing to allocate; keys MicroPython interns already)
        d = {"online": True, "fw": FW, "uptime": int(time.time() - self.t0), "boot": self.boot,
             "mem_free": gc.mem_free(), "interval": self.cfg["heartbeat"],
             "features": self.features, "plugins": self.plugins.states(),
             "micropython": implementation.version, "_mpy": implementation._mpy}
        if self.probation:
            d["probation"] = True
        msg = dumps(d).encode()
        d = None
        # in parts: the file list (a kilobyte on a full flash) is sent from the flash, or
        # from RAM where the flash had no room for it, never copied
        f = None if self.files else open(FILES, "rb")
        try:
            self.link.publish(self.link.t_status, (memoryview(msg)[:-1], b',"files":',
                                                   f or self.files, b"}"), True)
        finally:
            if f:
                f.close()
        if self.debug:
            print("heartbeat", gc.mem_free())

    def crash(self, reason):
        # on probation, fail the update: the reason is recorded for safeboot's rollback, then
        # a reset (docs/safety.md, "Healthy"); otherwise the runtime carries on
        if self.probation and self.guard:
            self.guard.crash(reason)
            import machine

            machine.reset()

    def _verdict(self, healthy):
        # Confirm the update on probation (healthy) and/or report its outcome. ota_verdict
        # (with journal.py) is loaded for this only: a device without a journal never
        # compiles it. It returns the journal as the flash now holds it: None once reported.
        import sys
        import ota_verdict

        self.j = ota_verdict.run(self.j, healthy, self.report)
        if healthy:
            self.probation = False
        del sys.modules["ota_verdict"], sys.modules["journal"], ota_verdict
        gc.collect()
        self.heartbeat()  # the journal is gone (and its code): show it

    # -- OTA --

    def report(self, d):
        # publish status d on ID/ota/status; True when it went out
        if d["state"] == "failed":
            print("OTA failed:", d["file"], d["reason"], d["detail"])
        elif self.debug:
            print("OTA", d["state"], d["file"])
        try:
            return self.link.publish(self.t_ota_status, dumps(d).encode())
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

            t = ota_push.run(msg, self.cfg, self.report, self.j)
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
            return
        if t:  # in place (a bundle journaled) and reported verified: reboot into it
            print("OTA done:", t.name, "- rebooting")
            self.report({"token": t.token, "state": "rebooting", "file": t.name})
            self.link.disconnect()
            import machine

            time.sleep_ms(100)  # let the stack flush before the reset
            machine.reset()
