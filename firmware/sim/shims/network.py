# Simulator shim for `network`: a Wi-Fi station that is always in range.
STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 5


class WLAN:
    def __init__(self, interface=STA_IF):
        self._if = interface
        self._active = False
        self._up = False
        self._cfg = {"essid": "", "mac": b"\x02\x00\x00\x51\x1a\x7e"}

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._up = False

    def connect(self, ssid=None, key=None, *args, **kw):
        self._active = True
        self._cfg["essid"] = ssid or ""
        self._up = True

    def disconnect(self):
        self._up = False

    def isconnected(self):
        # with no SSID configured a board reconnects to the one it remembers
        return self._up or (self._active and self._if == STA_IF)

    def status(self, *args):
        return STAT_GOT_IP if self.isconnected() else STAT_IDLE

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kw):
        if args:
            return self._cfg.get(args[0])
        self._cfg.update(kw)
