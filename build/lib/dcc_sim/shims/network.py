# Simulator shim for `network`: a Wi-Fi station always in range, connected once active (only
# what the firmware uses of a board's built-in module; run precompiled, like machine).
STA_IF = 0


class WLAN:
    on = False

    def active(self, on=None):
        if on is None:
            return self.on
        self.on = bool(on)

    # with no argument, as active(): once active it is connected (a board with no SSID set
    # rejoins the network it remembers)
    isconnected = active

    def connect(self, *args):
        self.on = True

    def disconnect(self):
        pass

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
