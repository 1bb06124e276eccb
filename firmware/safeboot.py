# DCC-OTA safe boot, called by boot.py before anything else (docs/safety.md). It finishes
# an interrupted commit, counts the boots of an update on probation and rolls back to the
# backups. Every step is idempotent, so a power cut at any point is finished at the next
# boot. On probation boot.py then runs main.py under the watchdog (probation.py), with this
# module already off the heap. The journal's files and how they are written are
# journal.py's. Protected, as journal.py: a push replaces them only with force=1. Kept
# small: it is compiled at every boot.
import journal


def _exists(p):
    import os

    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _put(src, name):
    # rename src over name (LittleFS: atomic), making name's one folder if missing. An
    # OSError (a folder in the way, a file where the folder should be) goes up to run(),
    # which rolls back with it.
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
    # had[i]: 0 a new file, 1 a replaced one (backed up first), 2 a delete (the file goes to
    # its backup slot). Each rename is skipped once done: a cut is finished at the next boot.
    journal.step("commit")
    for i, name in enumerate(j["files"]):
        old = journal.OLD + "/" + str(i)
        new = journal.NEW + "/" + str(i)
        h = j["had"][i]
        if h == 2 or _exists(new):
            if h and _exists(name):
                _put(name, old)
                journal.step("backup%d" % i)
            if h != 2:
                _put(new, name)
                journal.step("place%d" % i)
    journal.remove(journal.CRASH)  # from a boot before this update: it must not roll this back
    j["state"] = "probation"
    j["boots"] = 0
    journal.write(j)


def _rollback(j, reason):
    # Every backup back into place, every file the bundle added removed (with the folder it
    # made, once empty); resumable. A file that cannot be restored is named in the reason
    # and the others are still restored: the board boots what is there.
    import os

    if j["state"] != "rollback":
        j["state"] = "rollback"
        j["reason"] = reason
        try:
            journal.write(j)
        except OSError:  # a full flash: the renames below need no room, restore all the same
            pass
    journal.step("rollback")
    for i, name in enumerate(j["files"]):
        old = journal.OLD + "/" + str(i)
        try:
            if _exists(old):
                _put(old, name)
            elif not j["had"][i] and _exists(name):
                os.remove(name)  # the bundle added it
                k = name.find("/")
                if k > 0:
                    try:
                        os.rmdir(name[:k])
                    except OSError:
                        pass  # not empty
        except OSError as e:
            j["reason"] += "; %s not restored: %s" % (name, e)
        journal.step("restore%d" % i)
    j["state"] = "rolled_back"
    journal.write(j)
    journal.remove(journal.CRASH)
    print("safeboot: rolled back:", j["reason"])
    import machine

    machine.reset()


def _run(j):
    s = j["state"]
    if s == "commit":
        _commit(j)
    elif s not in ("probation", "rollback", "confirmed", "rolled_back"):
        _rollback(j, "unknown journal state")
    if j["state"] == "rollback":
        _rollback(j, j["reason"])
    if j["state"] != "probation":
        return None  # confirmed or rolled_back: the runtime reports it and clears the journal
    why = None
    if _exists(journal.CRASH):
        with open(journal.CRASH) as f:
            why = f.read()
    j["boots"] += 1
    n = j.get("max", 2)
    if not why and j["boots"] > n:
        why = "no healthy boot in %d tries" % n
    if why:
        _rollback(j, why)
    journal.write(j)
    print("safeboot: probation, boot", j["boots"], "of", n)
    return j.get("wdt", 8000)


def run():
    # The watchdog timeout (ms) when an update is on probation, else None. Never raises: an
    # error in the journal's steps rolls the update back with the error as the reason; one
    # in the rollback itself ends it as rolled back, so that the board always boots.
    try:
        j = journal.load()
        j["state"]
    except Exception:  # none, unreadable or not a journal
        journal.remove()
        journal.clear(journal.NEW)  # the temporary files of a push cut short
        journal.clear(journal.OLD)  # a stale backup slot, folders included: cleared before use
        return None
    try:
        return _run(j)
    except Exception as e:
        why = "safeboot: %s: %s" % (type(e).__name__, e)
        print(why)
    try:
        if j["state"] != "rollback":
            _rollback(j, why)
    except Exception as e:
        print("safeboot: rollback failed:", repr(e))
    try:  # the runtime reports it, clears .ota/ and runs whatever is in place
        j["state"] = "rolled_back"
        j["reason"] = why
        journal.write(j)
    except Exception:
        journal.remove()
    return None
