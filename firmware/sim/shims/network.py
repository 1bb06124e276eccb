# Simulator shim for `network`: a Wi-Fi station that is always in range (only what the
# firmware uses of a board's built-in module; run precompiled, like the machine shim).
STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, interface=0):
        self.on = False

    def active(self, on=None):
        if on is None:
            return self.on
        self.on = bool(on)

    def connect(self, *args, **kw):
        self.on = True

    def disconnect(self):
        pass

    def isconnected(self):
        # with no SSID configured a board reconnects to the one it remembers
        return self.on

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
