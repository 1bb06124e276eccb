"""Loading firmware modules under CPython, for the unit tests that drive them directly.

The firmware imports what MicroPython has and CPython lacks (`micropython.const`,
`time.ticks_ms`) with no fallback of its own: on a board every name a module holds is an
interned string of a small heap. The stand-ins are installed here instead."""
import importlib.util
import sys
import time
import types

from dcc_sim.launcher import FIRMWARE_DIR


def _micropython_names():
    if "micropython" not in sys.modules:
        mp = types.ModuleType("micropython")
        mp.const = lambda x: x
        sys.modules["micropython"] = mp
    if not hasattr(time, "ticks_ms"):
        time.ticks_ms = lambda: int(time.monotonic() * 1000)
        time.ticks_diff = lambda a, b: a - b


def load(name, register=False):
    """firmware/<name>.py as a new module object; register: also put it in sys.modules (a
    module that imports it by name then gets this one)."""
    _micropython_names()
    spec = importlib.util.spec_from_file_location(name, FIRMWARE_DIR / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
