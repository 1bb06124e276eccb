# One push, end to end (docs/protocol.md): the runtime hands every ID/OTA message to run().
# It parses the trigger (ota_trigger), checks a signature where the device has a key
# (ota_auth, imported only then), refuses a push while an update's journal exists, has
# ota_receiver fetch the file(s), reports every status on ID/ota/status and, once the file
# is in place or the bundle journaled, reboots the board.
import gc

from ota_trigger import OTAError, parse, protected
from ota_receiver import _fail, receive


def check(payload, report, keyed, held):
    # The Trigger of payload when the device takes it; else report why and return None.
    # held: an update's journal exists (on probation, or its outcome not reported yet).
    try:
        t = parse(payload)
    except OTAError as e:
        report({"token": e.token, "state": "failed", "file": e.name,
                "reason": e.reason, "detail": e.detail})
        return None
    err = None
    if keyed:
        import ota_auth  # signatures (docs/protocol.md, "Signed triggers")

        err = ota_auth.check(payload, t)
        keyed = "sig" in ota_auth.features()
    if not err and held:
        err = "the last update is not confirmed yet"
    if not err and not t.bundle:
        err = protected(t.name, t, keyed)
    if err:
        report(_fail(t, "rejected", err))
        return None
    t.keyed = keyed
    return t


def run(rt, payload):
    # Handle one ID/OTA message for runtime.Runtime rt; returns only when the board stays up.
    import sys

    c = rt.cfg
    gc.collect()
    idle = gc.mem_alloc()
    t = st = None  # st: the final status, None when the heap ran out
    try:
        t = check(payload, rt.report, bool(c.get("key")), rt.j is not None)
        if not t:
            return  # refused, and reported
        st = receive(t, rt.report, idle, t.keyed, {"max": c["max_boots"], "wdt": c["wdt_ms"]})
    except MemoryError:  # e.g. compiling ota_bundle on a full heap: keep running
        pass
    if not st or st["state"] != "verified":
        sys.modules.pop("ota_bundle", None)
        sys.modules.pop("journal", None)
        gc.collect()  # before the report: it needs the room
        if not t:
            raise MemoryError  # not even parsed: device reports it from the raw trigger
        rt.report(st or _fail(t, "no memory", "the heap is too full or fragmented"))
        return
    rt.report(st)
    print("OTA done:", t.name, "- rebooting")
    rt.report({"token": t.token, "state": "rebooting", "file": t.name})
    try:
        rt.mq.publish(rt.t_status, b'{"online":false,"reason":"rebooting"}', True)
    except OSError:
        pass
    rt.mq.disconnect()
    import time
    import machine

    time.sleep_ms(100)  # let the stack flush before the reset
    machine.reset()
