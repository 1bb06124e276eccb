# The update journal on the flash (docs/safety.md): the one module that knows its files and
# how they are written. The journal is .ota/journal.json, compact JSON, always replaced
# whole: written to .ota/journal.tmp (its one temporary name, in write()), then renamed
# over it, so a power cut leaves the old one or the new one. A bundle's files wait in
# NEW/<i>, the files they replace or delete in the backup slot OLD/<i>. Part of the
# safe-boot code (safeboot.py and probation.py run on it): a push replaces it only with
# force=1. Loaded only where journal code runs (the safe boot, a bundle push, the verdict)
# and unloaded after. Names count (firmware/README.md, "Memory"): write and clear are the
# interpreter's own.
J = ".ota/journal.json"
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


def write(j):
    # compact: a journal of up to 128 bytes is kept inside LittleFS's folder entry, so an
    # update that only deletes works on a flash without one free block
    import json
    import os

    tmp = ".ota/journal.tmp"
    with open(tmp, "w") as f:
        json.dump(j, f, separators=(",", ":"))
    os.rename(tmp, J)


def remove(p=J):
    # p (the journal unless named) gone, whether it was there or not
    import os

    try:
        os.remove(p)
    except OSError:
        pass


def clear(d):
    # remove what folder d holds (NEW, OLD), folders in it too
    import os

    try:
        for e in os.ilistdir(d):
            p = d + "/" + e[0]
            if e[1] == 0x4000:
                clear(p)
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
