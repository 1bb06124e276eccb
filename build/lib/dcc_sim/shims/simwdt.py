# The machine shim's WDT, used only while an update is on probation (safeboot): imported by
# the machine shim on first use, so it costs no heap before.
import os
import time


class WDT:
    # The launcher SIGKILLs a process whose last feed (the mtime of SIM_CTL/.sim_wdt, which
    # holds the timeout in ms) is older than the timeout. Feeds are written at most every
    # 200 ms.

    def __init__(self, id=0, timeout=5000):
        self.ms = timeout
        self.last = None
        self.feed()

    def feed(self):
        now = time.ticks_ms()
        if self.last is None or time.ticks_diff(now, self.last) >= 200:
            self.last = now
            d = os.getenv("SIM_CTL")
            if d:
                with open(d + "/.sim_wdt", "w") as f:
                    f.write(str(self.ms))
