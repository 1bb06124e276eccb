# DCC-OTA safe boot, called by boot.py before anything else (docs/safety.md). It finishes
# an interrupted commit, counts the boots of an update on probation and rolls back to the
# backups. Every step is idempotent, so a power cut at any point is finished at the next
# boot. On probation boot.py then runs main.py under the watchdog (probation.py), with this
# module already off the heap. Protected: a push replaces this file only with force=1.
# Kept small: it is compiled at every boot.
J = ".ota/journal.json"
CRASH = ".ota/crash.txt"


def _step(name):
    # a named point where the simulator can cut the power (no-op on a board)
    import machine

    f = getattr(machine, "sim_step", None)
    if f:
        f(name)


def _exists(p):
    import os

    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _save(j):
    import json
    import os

    with open(J + ".tmp", "w") as f:
        json.dump(j, f)
    os.rename(J + ".tmp", J)


def _put(src, name):
    # rename src over name (LittleFS: atomic), making name's one folder if missing
    import os

    i = name.find("/")
    if i > 0 and not _exists(name[:i]):
        os.mkdir(name[:i])
    try:
        os.rename(src, name)
    except OSError:  # FAT cannot rename over a file
        os.remove(name)
        os.rename(src, name)


def _commit(j):
    _step("commit")
    for i, name in enumerate(j["files"]):
        new = ".ota/new/%d" % i
        if not _exists(new):
            continue  # already in place
        old = ".ota/old/%d" % i
        if j["had"][i] and _exists(name) and not _exists(old):
            _put(name, old)
            _step("backup%d" % i)
        _put(new, name)
        _step("place%d" % i)
    if _exists(CRASH):  # from a boot before this update: it must not roll this one back
        import os

        os.remove(CRASH)
    j["state"] = "probation"
    j["boots"] = 0
    _save(j)


def _rollback(j, reason):
    import os

    if j["state"] != "rollback":
        j["state"] = "rollback"
        j["reason"] = reason
        _save(j)
    _step("rollback")
    for i, name in enumerate(j["files"]):
        old = ".ota/old/%d" % i
        if _exists(old):
            _put(old, name)
        elif not j["had"][i] and _exists(name):
            os.remove(name)  # the bundle added it
        _step("restore%d" % i)
    j["state"] = "rolled_back"
    _save(j)
    try:
        os.remove(CRASH)
    except OSError:
        pass
    print("safeboot: rolled back:", j["reason"])
    import machine

    machine.reset()


def run():
    # The watchdog timeout (ms) when an update is on probation, else None.
    try:
        import json

        with open(J) as f:
            j = json.load(f)
    except (OSError, ValueError):
        import os

        try:  # the temporary files of a push cut short
            for e in os.ilistdir(".ota/new"):
                os.remove(".ota/new/" + e[0])
        except OSError:
            pass
        return None
    if j["state"] == "commit":
        _commit(j)
    if j["state"] == "rollback":
        _rollback(j, j["reason"])
    if j["state"] != "probation":
        return None  # confirmed or rolled_back: the runtime reports it and clears the journal
    why = None
    if _exists(CRASH):
        with open(CRASH) as f:
            why = f.read()
    j["boots"] += 1
    n = j.get("max", 2)
    if not why and j["boots"] > n:
        why = "no healthy boot in %d tries" % n
    if why:
        _rollback(j, why)
    _save(j)
    print("safeboot: probation, boot", j["boots"], "of", n)
    return j.get("wdt", 8000)
