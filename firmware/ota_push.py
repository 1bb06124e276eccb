# One push, end to end (docs/protocol.md): the runtime hands every ID/OTA message to run().
# It parses the trigger (ota_trigger), checks a signature where the device has a key
# (ota_auth, imported only then), refuses a push while an update's journal exists, has
# ota_receiver fetch the file(s) and reports every status on ID/ota/status; once the file
# is in place or the bundle journaled, the runtime reboots the board.
import gc

from ota_trigger import OTAError, parse, protected
from ota_receiver import _fail, receive


def run(payload, cfg, report, j):
    # Handle one ID/OTA message: the Trigger when its file is in place (a bundle journaled)
    # and reported verified, for the runtime to reboot into; None when the push was refused
    # or failed (reported); MemoryError when not even parsed (the runtime reports it from
    # the raw trigger). report(dict) publishes a status; j: the runtime's update journal, or
    # None: while one exists (on probation, or its outcome not reported yet) a push is
    # refused.
    import sys

    gc.collect()
    idle = gc.mem_alloc()
    t = st = None  # st: the final status, None when the heap ran out
    try:
        try:
            t = parse(payload)
        except OTAError as e:
            report({"token": e.token, "state": "failed", "file": e.name,
                    "reason": e.reason, "detail": e.detail})
            return None
        err = None
        keyed = bool(cfg.get("key"))
        if keyed:
            import ota_auth  # signatures (docs/protocol.md, "Signed triggers")

            err = ota_auth.check(payload, t)
            keyed = "sig" in ota_auth.features()
        if not err and j is not None:
            err = "the last update is not confirmed yet"
        if not err and not t.bundle:
            err = protected(t.name, t, keyed)
        if err:
            report(_fail(t, "rejected", err))
            return None
        st = receive(t, report, idle, keyed, {"max": cfg["max_boots"], "wdt": cfg["wdt_ms"]})
    except MemoryError:  # e.g. compiling ota_bundle on a full heap: keep running
        pass
    if not st or st["state"] != "verified":
        sys.modules.pop("ota_bundle", None)
        sys.modules.pop("journal", None)
        gc.collect()  # before the report: it needs the room
        if not t:
            raise MemoryError  # not even parsed: the runtime reports it from the raw trigger
        report(st or _fail(t, "no memory", "the heap is too full or fragmented"))
        return None
    report(st)
    return t
