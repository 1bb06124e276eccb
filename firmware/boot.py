# Runs first on every boot. Minimal on purpose: safeboot.py finishes or rolls back an
# update and, while one is on probation, says so: main.py then runs under the watchdog
# (probation.py, which does not return), with safeboot (and its journal.py) unloaded.
import gc
import sys

try:
    import safeboot
except ImportError:
    safeboot = None
ms = safeboot.run() if safeboot else None
sys.modules.pop("safeboot", None)
sys.modules.pop("journal", None)
del safeboot
gc.collect()
if ms is not None:
    import probation

    probation.run(ms)
