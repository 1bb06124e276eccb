# The update journal on the flash (docs/safety.md): the one module that knows its files and
# how they are written. The journal is .ota/journal.json, compact JSON, always replaced
# whole: written to TMP, then renamed over it, so a power cut leaves the old one or the new
# one. A bundle's files wait in NEW/<i>, the files they replace or delete in the backup slot
# OLD/<i>. Part of the safe-boot code (safeboot.py and probation.py run on it): a push
# replaces it only with force=1. Loaded only where journal code runs (the safe boot, a
# bundle push, the verdict) and unloaded after.
J = ".ota/journal.json"
TMP = ".ota/journal.tmp"
NEW = ".ota/new"
OLD = ".ota/old"
CRASH = ".ota/crash.txt"  # why a boot on probation failed (probation.py), for the rollback


def load():
    # the journal as read (not checked), or None: no file, or not JSON
    import json

    try:
        with open(J) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save(j):
    # compact: a journal of up to 128 bytes is kept inside LittleFS's folder entry, so an
    # update that only deletes works on a flash without one free block
    import json
    import os

    with open(TMP, "w") as f:
        json.dump(j, f, separators=(",", ":"))
    os.rename(TMP, J)


def remove(p=J):
    # p (the journal unless named) gone, whether it was there or not
    import os

    try:
        os.remove(p)
    except OSError:
        pass


def empty(d):
    # remove what folder d holds (NEW, OLD), folders in it too
    import os

    try:
        for e in os.ilistdir(d):
            p = d + "/" + e[0]
            if e[1] == 0x4000:
                empty(p)
                os.rmdir(p)
            else:
                os.remove(p)
    except OSError:
        pass


def step(name):
    # a named point of an update where the simulator can cut the power (no-op on a board)
    import machine

    f = getattr(machine, "sim_step", None)
    if f:
        f(name)
