# Simulator shim for `machine`: what the firmware uses of a board's built-in module. A board
# has it in ROM; here all it holds comes off the simulated heap, so it runs precompiled and
# leaves WDT (probation only: simwdt) and the work of sim_step (power cuts and a filling
# flash, armed by a test: simupdate) to modules imported on first use.
# reset() exits with code 99 (dcc_sim.launcher.RESET_EXIT_CODE): the launcher's reboot. Input
# pins read .sim_pins.json in the flash folder ({"0": 0}: GPIO0 held low, a pressed button);
# output pins are written to .sim_out.json, for the tests.
_out = {}


def reset():
    raise SystemExit(99)


def unique_id():
    return b"\x51\x1a\x7e\x00"


def sim_step(name):
    # a named update step: cheap unless a test may have armed it (a power cut; on a flash
    # image, a filler: simupdate checks)
    import os

    if os.getenv("SIM_KILL_AT") or os.getenv("SIM_FLASH"):
        import simupdate

        simupdate.sim_step(name)


def __getattr__(name):
    # (a module __getattr__: MICROPY_MODULE_GETATTR, on in the unix port) an AttributeError
    # for other names, as on a board
    if name == "WDT":
        import simwdt

        return simwdt.WDT
    raise AttributeError(name)


class Pin:
    IN = 0
    OUT = PULL_UP = 1

    def __init__(self, id, mode=0, *pull, value=None):  # (no name for pull: one qstr less)
        self.id = str(id)
        self.mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        import json

        k = self.id
        if v is None:
            if self.mode:  # OUT
                return _out.get(k, 0)
            try:
                with open(".sim_pins.json") as f:
                    return int(json.load(f).get(k, 1))
            except (OSError, ValueError):
                return 1  # pulled up
        v = 1 if v else 0
        if _out.get(k) != v:
            _out[k] = v
            try:
                with open(".sim_out.json", "w") as f:
                    json.dump(_out, f)
            except OSError:
                pass
