# DCC-OTA receiver: connect back for a checked trigger and stream the file(s) to flash.
#
# See docs/protocol.md; ota_push decides whether a trigger is taken and calls receive().
# A single file goes to .ota.part and, after its SHA-1 matches, is renamed over the target
# (the legacy path, for a trigger without bundle=N). A bundle's manifest is read and checked
# by ota_bundle (imported only for a bundle push), its files go to .ota/new/<i> through the
# same loop, and ota_bundle writes the commit journal that safeboot.py carries out at boot.
# Memory: one 1024-byte buffer per push (smaller on a heap with no room for it), filled
# with readinto and freed before the final status goes out (receive() returns it to
# ota_push); a chunk is passed on whole (no copies). A short read is passed on as a
# memoryview slice, made only when the length differs from the last one: lwIP returns at
# most one segment per read, so over Wi-Fi most reads are short, and mostly of one or two
# lengths. The verified status carries "heap": what the transfer held above the idle heap
# (docs/protocol.md).
from micropython import const

_BUF = const(1024)
_TIMEOUT = const(10)  # seconds, for every socket operation
PART = ".ota.part"



def _fail(t, reason, detail):
    return {"token": t.token, "state": "failed", "file": t.name, "reason": reason,
            "detail": detail}


def _remove(name):
    import os

    try:
        os.remove(name)
    except OSError:
        pass


def _place(name):
    # rename .ota.part over name, creating its one sub-folder if missing
    import os

    i = name.find("/")
    if i > 0:
        try:
            os.mkdir(name[:i])
        except OSError:
            pass  # exists
    try:
        os.rename(PART, name)
    except OSError:
        # FAT cannot rename over an existing file (LittleFS can, atomically)
        os.remove(name)
        os.rename(PART, name)


def free_space():
    # (block size, free bytes) of the flash, or (0, None) where statvfs is missing
    import os

    try:
        st = os.statvfs(".")
    except (OSError, AttributeError):
        return 0, None
    # A full LittleFS can over-count its used blocks and wrap f_bfree: more free than the
    # whole flash means none.
    free = st[0] * st[4]
    return st[0], 0 if free > st[1] * st[2] else free


def _copy(s, path, left, sha, name, buf, mv, wdt):
    # Stream left bytes (-1: up to EOF) from socket s to a new file path, checking the
    # SHA-1 sha of file name; returns the byte count. The one transfer loop of every push:
    # an OSError out of it is the flash's (write failed, no space), the socket's are
    # turned into OTAError here.
    import hashlib
    from binascii import hexlify
    from ota_trigger import OTAError

    h = hashlib.sha1()
    got = 0
    c = buf
    b = len(buf)
    f = open(path, "wb")
    try:
        while left:
            try:
                k = s.readinto(buf if left < 0 or left >= b else mv[:left])
            except OSError as e:  # ETIMEDOUT (110) or, on some ports, EAGAIN (11)
                raise OTAError("timeout" if e.args and e.args[0] in (11, 110) else
                               "transfer broken", str(e))
            if not k:
                if left > 0:
                    raise OTAError("transfer broken", "EOF after %d bytes" % got)
                break  # legacy: EOF ends the file
            if k != len(c):
                c = buf if k == b else mv[:k]
            f.write(c)
            h.update(c)
            got += k
            if left > 0:
                left -= k
            if wdt:
                wdt.feed()
    finally:
        f.close()
    d = hexlify(h.digest()).decode()
    if d != sha:
        raise OTAError("hash mismatch", "%s: got %s" % (name, d))
    return got


def receive(t, report, idle=0, keyed=False, extra=None):
    # Fetch the file (or the bundle) of Trigger t; report(dict) gets the progress. Returns
    # the final status, "verified" (the file in place; a bundle's commit journaled) or
    # "failed", for the caller to report once this frame is gone: the GC scans a running
    # frame whole, stale slots included, so only then is the buffer free for the report.
    # idle: gc.mem_alloc() before the push, for the "heap" figure of the verified status.
    # extra: more journal fields for safeboot (max boots, watchdog timeout).
    import socket
    import gc
    import sys
    from ota_trigger import OTAError

    wdt = getattr(sys.modules.get("probation"), "wdt", None)  # running once started
    ob = None
    if t.bundle:
        gc.collect()  # the trigger's parsing garbage out of the way of the bundle code
        import ota_bundle as ob

        err = ob.start(t)
        if err:
            return _fail(t, "malformed", err)
    elif t.size is not None:
        bs, free = free_space()
        if free is not None and t.size + 2 * bs > free:
            return _fail(t, "no space", "need %d bytes, %d free" % (t.size, free))
    st = {"token": t.token, "state": "connecting", "file": t.name}
    report(st)
    gc.collect()
    s = socket.socket()
    stage = "connect failed"
    placed = False
    try:
        s.settimeout(_TIMEOUT)
        s.connect(socket.getaddrinfo(t.host, t.port)[0][-1])
        if t.token:
            s.write(t.token.encode() + b"\n")
        st["state"] = "connected"
        report(st)
        gc.collect()  # the 1 KB buffer finds a free block, the figure below no garbage
        # 1 KB, or half that down to 128 bytes (and what a bundle's manifest needs) when a
        # full or fragmented heap has no block that big: the push goes slower, not fails
        n = _BUF
        while True:
            try:
                buf = bytearray(n)
                break
            except MemoryError:
                n >>= 1
                if n < 128 or ob and n < t.size:
                    raise
        mv = memoryview(buf)
        peak = max(idle, gc.mem_alloc())  # the transfer's working set
        stage = "transfer broken"
        if ob:
            items = ob.read_manifest(s, mv, t, keyed)  # [(sha1, size, name)], space checked
        else:
            items = ((t.sha1, -1 if t.size is None else t.size, t.name),)
        got = 0
        for i in range(len(items)):
            stage = "write failed"  # an OSError from the socket says "timeout" below
            x = items[i]
            if x[0] != "-":  # "-": a delete, nothing on the stream
                got += _copy(s, ob.NEW + "/" + str(i) if ob else PART, x[1], x[0], x[2], buf,
                             mv, wdt)
            if ob:
                ob.step("download")
        if t.size is not None:
            stage = "size mismatch"
            if s.readinto(mv[:1]):
                raise OTAError("size mismatch", "more than the announced bytes")
        peak = max(peak, gc.mem_alloc())  # and what the loop left (no collection since)
        stage = "write failed"
        if ob:
            ob.commit(t, items, extra)
        else:
            _place(t.name)
        placed = True
    except OTAError as e:
        err = e.reason, e.detail
    except MemoryError:
        err = "no memory", "the heap is too full or fragmented"
    except OSError as e:
        # a socket timeout is ETIMEDOUT (110) or, on some ports, EAGAIN (11)
        reason = stage
        if e.args and e.args[0] in (11, 110) and stage != "write failed":
            reason = "timeout"
        elif e.args and e.args[0] == 28:
            reason = "no space"
        err = reason, str(e)
    finally:
        s.close()
        if not placed:  # even when a handler ran out of heap: "failed" leaves nothing behind
            if ob:
                ob.clean()
            else:
                _remove(PART)
    if not placed:
        return _fail(t, err[0], err[1])
    st["state"] = "verified"
    st["sha1"] = t.sha1
    st["bytes"] = got
    st["heap"] = peak - idle
    return st
