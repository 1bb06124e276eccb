# DCC-OTA receiver: parse a trigger from ID/OTA, connect back, stream the file to flash.
#
# See docs/protocol.md. parse() (from ota_trigger) never touches the flash or the network;
# receive() writes only .ota.part and, after the SHA-1 matches, renames it over the target.
# Memory: one 1024-byte buffer per push, filled with readinto; a chunk is passed on
# whole (no copies). A short read is passed on as a memoryview slice, made only when the
# length differs from the last one: lwIP returns at most one segment per read, so over
# Wi-Fi most reads are short, and mostly of one or two lengths. The verified status
# carries "heap": what the transfer held above the idle heap (docs/protocol.md).
try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    const = lambda x: x

_BUF = const(1024)
_TIMEOUT = const(10)  # seconds, for every socket operation
PART = ".ota.part"

from ota_trigger import OTAError, Trigger, bad_name, parse, protected  # noqa: E402,F401


def _status(t, state, extra=None):
    d = {"token": t.token, "state": state, "file": t.name}
    if extra:
        d.update(extra)
    return d


def _fail(t, reason, detail):
    return _status(t, "failed", {"reason": reason, "detail": detail})


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


def _most(peak):
    # the larger of peak and the heap in use now
    import gc

    a = gc.mem_alloc()
    return a if a > peak else peak


def receive(t, report, idle=0):
    # Fetch the file for Trigger t. report(dict) gets each status; True when in place.
    # idle: gc.mem_alloc() before the push, for the "heap" figure of the verified status.
    import os
    import socket
    import hashlib
    import gc
    import sys
    from binascii import hexlify

    wdt = getattr(sys.modules.get("safeboot"), "wdt", None)  # running once started
    if t.size is not None:
        try:
            st = os.statvfs(".")
            free = st[0] * st[4]
        except OSError:
            free = None
        if free is not None and t.size + 2 * st[0] > free:
            report(_fail(t, "no space", "need %d bytes, %d free" % (t.size, free)))
            return False
    report(_status(t, "connecting"))
    gc.collect()
    s = socket.socket()
    f = None
    stage = "connect failed"
    try:
        s.settimeout(_TIMEOUT)
        s.connect(socket.getaddrinfo(t.host, t.port)[0][-1])
        if t.token:
            s.write(t.token.encode() + b"\n")
        report(_status(t, "connected"))
        gc.collect()  # the 1 KB buffer finds a free block, the figure below no garbage
        buf = bytearray(_BUF)
        mv = memoryview(buf)
        h = hashlib.sha1()
        stage = "write failed"
        f = open(PART, "wb")
        peak = _most(idle)  # the transfer's working set
        got = 0
        c = buf
        left = t.size if t.size is not None else -1
        while left:
            stage = "transfer broken"
            if 0 < left < _BUF:
                k = s.readinto(mv[:left])
            else:
                k = s.readinto(buf)
            if not k:
                if left > 0:
                    raise OTAError("transfer broken", "EOF after %d bytes" % got)
                break  # legacy: EOF ends the file
            stage = "write failed"
            if k != len(c):
                c = buf if k == _BUF else mv[:k]
            f.write(c)
            h.update(c)
            got += k
            if left > 0:
                left -= k
            if wdt:
                wdt.feed()
        if t.size is not None:
            stage = "size mismatch"
            if s.readinto(mv[:1]):
                raise OTAError("size mismatch", "more than %d bytes" % t.size)
        peak = _most(peak)  # and what the loop left (no collection since)
        f.close()
        f = buf = mv = c = None  # free the buffer before the reports
        digest = hexlify(h.digest()).decode()
        if digest != t.sha1:
            raise OTAError("hash mismatch", "got " + digest)
        stage = "write failed"
        _place(t.name)
    except OTAError as e:
        report(_fail(t, e.reason, e.detail))
    except OSError as e:
        # a socket timeout is ETIMEDOUT (110) or, on some ports, EAGAIN (11)
        reason = stage
        if e.args and e.args[0] in (11, 110) and stage != "write failed":
            reason = "timeout"
        elif e.args and e.args[0] == 28:
            reason = "no space"
        report(_fail(t, reason, str(e)))
    else:
        report(_status(t, "verified", {"sha1": digest, "bytes": got, "heap": peak - idle}))
        return True
    finally:
        s.close()
        if f is not None:
            f.close()
    _remove(PART)
    return False


def _busy():
    # an update still on probation (or its outcome not yet reported) holds the journal
    import os

    try:
        os.stat(".ota/journal.json")
        return True
    except OSError:
        return False


def run(payload, report, extra=None):
    # Handle one ID/OTA message end to end; the Trigger when the file is in place (a
    # single file) or the bundle is verified and its commit journaled (t.bundle).
    import gc

    gc.collect()
    idle = gc.mem_alloc()
    try:
        t = parse(payload)
    except OTAError as e:
        report({"token": e.token, "state": "failed", "file": e.name,
                "reason": e.reason, "detail": e.detail})
        return None
    try:
        import ota_auth  # signatures (docs/protocol.md, "Signed triggers")
    except ImportError:
        ota_auth = None
    err = ota_auth.check(payload, t) if ota_auth else None
    if err:
        report(_fail(t, "rejected", err))
        return None
    keyed = ota_auth is not None and "sig" in ota_auth.features()
    if _busy():
        report(_fail(t, "rejected", "the last update is not confirmed yet"))
        return None
    if t.bundle:
        import ota_bundle

        return t if ota_bundle.receive(t, report, keyed, idle, extra) else None
    why = protected(t.name, t, keyed)
    if why:
        report(_fail(t, "rejected", why))
        return None
    return t if receive(t, report, idle) else None
