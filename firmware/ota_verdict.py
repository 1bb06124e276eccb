# The end of an update (docs/safety.md, steps 5 and 6), loaded by the runtime only when the
# journal needs it: confirm an update on probation, and report a confirmed or rolled-back
# one with the push's token, then clear .ota/ (the signature counter stays): the backups
# and temporaries, a folder that a confirmed delete left empty, and once the report is out
# the journal.
import os

import journal


def run(j, healthy, report):
    # Report the update of journal j with report(dict) (True when it went out); returns the
    # journal as the flash now holds it, for the runtime to keep: None once reported, else
    # j (the next connect reports it again). healthy: j's update on probation has run long
    # enough: it is confirmed first, on the flash, so a power cut from here on never rolls
    # it back.
    if healthy:
        j = dict(j)
        j["state"] = "confirmed"
        journal.write(j)
        print("update confirmed")
    d = {"token": j.get("token", ""), "state": j["state"], "file": "bundle"}
    if j["state"] == "confirmed":
        d["files"] = j["files"]
        for i, name in enumerate(j["files"]):
            k = name.find("/")
            if j["had"][i] == 2 and k > 0:
                try:
                    os.rmdir(name[:k])  # a delete emptied it
                except OSError:
                    pass  # other files in it
    else:
        d["reason"] = j.get("reason") or "rolled back"
    journal.clear(journal.OLD)
    journal.clear(journal.NEW)
    journal.remove(journal.CRASH)
    if not report(d):
        return j
    journal.remove()
    return None
