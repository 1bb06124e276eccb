# The end of an update (docs/safety.md, steps 5 and 6), loaded by the runtime only when the
# journal needs it: confirm an update on probation, and report a confirmed or rolled-back
# one with the push's token, then clear .ota/ (the signature counter stays): the backups
# and temporaries, and a folder that a confirmed delete left empty.
import json
import os


def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass


def _wipe(d):
    # files only: nothing else goes into the backup slot (ota_bundle refuses a folder's name),
    # and safeboot.py clears folders too at a boot without an update
    try:
        for e in os.ilistdir(d):
            os.remove(d + "/" + e[0])
    except OSError:
        pass


def confirm(j):
    # healthy: the state goes to flash first, so a power cut from here on never rolls
    # back a confirmed update (the next connect reports it)
    j["state"] = "confirmed"
    with open(".ota/journal.tmp", "w") as f:
        json.dump(j, f, separators=(",", ":"))  # small: see safeboot._save
    os.rename(".ota/journal.tmp", ".ota/journal.json")


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
    _wipe(".ota/old")
    _wipe(".ota/new")
    _rm(".ota/crash.txt")
    rt.mq.publish(rt.t_ota_status, json.dumps(d).encode())
    _rm(".ota/journal.json")
    rt.j = None
