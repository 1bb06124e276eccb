# The end of an update (docs/safety.md, steps 5 and 6), loaded by the runtime only when the
# journal needs it: confirm an update on probation, and report a confirmed or rolled-back
# one with the push's token, then clear .ota/ (the signature counter stays): the backups
# and temporaries, and a folder that a confirmed delete left empty.
import json
import os

import journal


def confirm(j):
    # healthy: the state goes to flash first, so a power cut from here on never rolls
    # back a confirmed update (the next connect reports it)
    j["state"] = "confirmed"
    journal.save(j)


def run(rt, healthy):
    # healthy: rt's update on probation has run long enough: confirm it first
    j = rt.j
    if healthy:
        confirm(j)
        rt.probation = False
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
    journal.empty(journal.OLD)
    journal.empty(journal.NEW)
    journal.remove(journal.CRASH)
    rt.mq.publish(rt.t_ota_status, json.dumps(d).encode())
    journal.remove()
    rt.j = None
