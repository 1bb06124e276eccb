# Runs first on every boot. Minimal on purpose: safeboot.py finishes or rolls back an
# update and, while one is on probation, runs main.py itself (it does not return then).
import gc

try:
    import safeboot
except ImportError:
    safeboot = None
if safeboot:
    safeboot.run()
    import sys

    del sys.modules["safeboot"]
del safeboot
gc.collect()
