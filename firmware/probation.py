# Runs main.py while an update is on probation (docs/safety.md), called by boot.py once
# safeboot.py has counted this boot: under the watchdog, and recording why a boot failed
# (an exception out of main, or main returning) for the next boot's safeboot to roll back
# with. Apart from safeboot so that the journal code is off the heap while the runtime runs.
# Protected, like safeboot.py: a push replaces it only with force=1.
from journal import CRASH  # the loader unloads journal.py, the path stays

wdt = None  # machine.WDT; the runtime feeds it


def crash(text):
    # record why this boot failed; the next boot rolls back with it as the reason
    with open(CRASH, "w") as f:
        f.write(text[:200])


def run(ms):
    global wdt
    import machine

    try:
        wdt = machine.WDT(timeout=ms)
    except (TypeError, ValueError):
        wdt = machine.WDT()  # the ESP8266's has a fixed timeout
    except AttributeError:
        pass  # a port without a watchdog
    try:
        import main  # noqa: F401  (runs the runtime; returns only if main.py ends)

        why = "main.py returned"
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print("probation: unhealthy:", why)
    crash(why)
    machine.reset()
