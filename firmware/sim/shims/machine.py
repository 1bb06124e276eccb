# Simulator shim for `machine` (MicroPython unix port): the built-in module plus what a
# board has and the unix port lacks: reset, Pin, unique_id, reset_cause, freq.
# reset() ends the process with RESET_EXIT_CODE; the launcher starts it again (a reboot).
# Input pins read `.sim_pins.json` in the flash folder ({"0": 0} = GPIO0 held low, i.e. a
# pressed button); output pins are written to `.sim_out.json` so tests can see them.
import sys

_path = sys.path[:]
sys.path[:] = []
try:
    from machine import *  # the built-in module, not this file
finally:
    sys.path[:] = _path
del _path, sys

RESET_EXIT_CODE = 99  # keep equal to dcc_sim.launcher.RESET_EXIT_CODE
PWRON_RESET = 0
HARD_RESET = 2
SOFT_RESET = 4
_out = {}


def reset():
    import sys

    try:
        sys.stdout.flush()
    except AttributeError:
        pass
    sys.exit(RESET_EXIT_CODE)


def unique_id():
    return b"\x51\x1a\x7e\x00"


def reset_cause():
    return SOFT_RESET


def freq(hz=None):
    return None if hz else 80000000


def _read_json(name):
    import json

    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 2
    IRQ_RISING = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, value=None):
        self.__init__(self.id, mode, pull, value)

    def value(self, v=None):
        key = str(self.id)
        if v is None:
            if self.mode == Pin.OUT:
                return _out.get(key, 0)
            return int(_read_json(".sim_pins.json").get(key, 1))
        v = 1 if v else 0
        if _out.get(key) != v:
            _out[key] = v
            import json

            with open(".sim_out.json", "w") as f:
                json.dump(_out, f)

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, *args, **kw):
        return None


def _ctl(name):
    # a file of the launcher's, outside the simulated flash (env SIM_CTL: a host folder)
    import os

    d = os.getenv("SIM_CTL")
    return d + "/" + name if d else None


class WDT:
    # The watchdog: the launcher SIGKILLs a process whose last feed (the mtime of
    # SIM_CTL/.sim_wdt, which holds the timeout in ms) is older than the timeout, then starts
    # it again like a hardware reset. Feeds are written at most every 200 ms.
    def __init__(self, id=0, timeout=5000):
        self._path = _ctl(".sim_wdt")
        self._ms = timeout
        self._last = None
        self.feed()

    def feed(self):
        import time

        now = time.ticks_ms()
        if self._path is None or (self._last is not None and
                                  time.ticks_diff(now, self._last) < 200):
            return
        self._last = now
        with open(self._path, "w") as f:
            f.write(str(self._ms))


def sim_step(name):
    # A named step of an update. With env SIM_KILL_AT equal to name the process prints a
    # marker and blocks; the launcher SIGKILLs it there (a power cut at exactly that step).
    import os

    if os.getenv("SIM_KILL_AT") != name:
        return
    import sys
    import time

    print("[sim-step]", name)
    try:
        sys.stdout.flush()
    except AttributeError:
        pass
    while True:
        time.sleep(1)
