# Simulator shim for `machine`: only what the firmware uses of a board's built-in module
# (a board has it in ROM: the launcher runs this precompiled, and it is kept small because
# what it holds comes off the simulated heap). reset() ends the process with exit code 99;
# the launcher starts it again (a reboot). Input pins read `.sim_pins.json` in the flash
# folder ({"0": 0} = GPIO0 held low, a pressed button); output pins are written to
# `.sim_out.json` so tests can see them. WDT and sim_step: see the launcher.
import os
import sys
import time

RESET_EXIT_CODE = 99  # keep equal to dcc_sim.launcher.RESET_EXIT_CODE
_out = {}


def reset():
    sys.stdout.flush()
    sys.exit(99)


def unique_id():
    return b"\x51\x1a\x7e\x00"


def _json(name, obj=None):
    import json

    try:
        if obj is None:
            with open(name) as f:
                return json.load(f)
        with open(name, "w") as f:
            json.dump(obj, f)
    except (OSError, ValueError):
        return {}


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, id, mode=0, pull=-1, value=None):
        self.id = str(id)
        self.out = mode == 1
        if value is not None:
            self.value(value)

    def value(self, v=None):
        k = self.id
        if v is None:
            return _out.get(k, 0) if self.out else int(_json(".sim_pins.json").get(k, 1))
        v = 1 if v else 0
        if _out.get(k) != v:
            _out[k] = v
            _json(".sim_out.json", _out)



class WDT:
    # The launcher SIGKILLs a process whose last feed (the mtime of SIM_CTL/.sim_wdt, which
    # holds the timeout in ms) is older than the timeout. Feeds are written at most every
    # 200 ms.
    def __init__(self, id=0, timeout=5000):
        d = os.getenv("SIM_CTL")
        self._path = d and d + "/.sim_wdt"
        self._ms = timeout
        self._last = None
        self.feed()

    def feed(self):
        now = time.ticks_ms()
        if not self._path or (self._last is not None and
                              time.ticks_diff(now, self._last) < 200):
            return
        self._last = now
        with open(self._path, "w") as f:
            f.write(str(self._ms))


def sim_step(name):
    # A named step of an update. With env SIM_KILL_AT equal to name the process prints a
    # marker and blocks; the launcher SIGKILLs it there (a power cut at exactly that step).
    if os.getenv("SIM_KILL_AT") == name:
        print("[sim-step]", name)
        sys.stdout.flush()
        while True:
            time.sleep(1)
