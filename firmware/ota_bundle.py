# DCC-OTA bundle receiver (docs/protocol.md, "Safe updates"): the manifest, then every
# file to .ota/new/<i> with its size and SHA-1 checked, then the commit journal. The
# renames themselves are done by safeboot.py at the next boot (one code path for a commit
# and for its roll-forward after a power cut). Imported only for a bundle push.
# Memory: one 1024-byte buffer for the manifest and then for every chunk.
try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    const = lambda x: x

from ota_trigger import OTAError, bad_name, protected  # noqa: E402

_BUF = const(1024)
_TIMEOUT = const(10)  # seconds, for every socket operation
DIR = ".ota"
NEW = ".ota/new/"
JOURNAL = ".ota/journal.json"


def _step(name):
    # a named point where the simulator can cut the power (no-op on a board)
    import machine

    f = getattr(machine, "sim_step", None)
    if f:
        f(name)


def _mkdirs():
    import os

    for d in (DIR, NEW[:-1], ".ota/old"):
        try:
            os.mkdir(d)
        except OSError:
            pass  # exists


def clean(d=NEW[:-1]):
    # delete every file in a .ota folder (temporary files of a push that did not commit)
    import os

    try:
        for e in os.ilistdir(d):
            os.remove(d + "/" + e[0])
    except OSError:
        pass


def save(j):
    # replace the journal atomically: a power cut leaves the old one or the new one
    import json
    import os

    with open(JOURNAL + ".tmp", "w") as f:
        json.dump(j, f)
    os.rename(JOURNAL + ".tmp", JOURNAL)


def _hex(s):
    return len(s) == 40 and all(c in "0123456789abcdef" for c in s)


def manifest(text, t, keyed):
    # [(sha1, size, name)] from the manifest text; OTAError malformed / rejected
    items = []
    for line in text.split("\n")[:-1]:
        p = line.split(" ")
        if len(p) != 3 or not _hex(p[0]) or not p[1].isdigit() or len(p[1]) > 8:
            raise OTAError("malformed", "bad manifest line")
        name = p[2]
        why = bad_name(name) if name != "settings.json" else None
        if why:
            raise OTAError("malformed", "%s: %s" % (name, why))
        for x in items:
            if x[2] == name:
                raise OTAError("malformed", name + " named twice")
        why = protected(name, t, keyed)
        if why:
            raise OTAError("rejected", why)
        items.append((p[0], int(p[1]), name))
    if not text.endswith("\n") or len(items) != t.bundle:
        raise OTAError("malformed", "manifest does not list %d files" % t.bundle)
    return items


def _free():
    import os

    try:
        st = os.statvfs(".")
        return st[0], st[0] * st[4]
    except OSError:
        return 0, None


def receive(t, report, keyed, idle=0, extra=None):
    # Fetch bundle t; True once every file is verified and the commit journal written.
    # extra: more journal fields for safeboot (max boots, watchdog timeout).
    import os
    import socket
    import hashlib
    import gc
    from binascii import hexlify

    def st(state, extra=None):
        d = {"token": t.token, "state": state, "file": t.name}
        if extra:
            d.update(extra)
        report(d)

    import sys

    wdt = getattr(sys.modules.get("safeboot"), "wdt", None)  # running once started
    if t.size > _BUF:
        st("failed", {"reason": "malformed", "detail": "manifest over %d bytes" % _BUF})
        return False
    _mkdirs()
    clean()
    st("connecting")
    gc.collect()
    s = socket.socket()
    f = None
    stage = "connect failed"
    try:
        s.settimeout(_TIMEOUT)
        s.connect(socket.getaddrinfo(t.host, t.port)[0][-1])
        s.write(t.token.encode() + b"\n")
        st("connected")
        gc.collect()
        buf = bytearray(_BUF)
        mv = memoryview(buf)
        peak = gc.mem_alloc()
        stage = "transfer broken"
        got = 0
        while got < t.size:
            k = s.readinto(mv[got:t.size])
            if not k:
                raise OTAError("transfer broken", "EOF in the manifest")
            got += k
        h = hashlib.sha1(mv[:got])
        if hexlify(h.digest()).decode() != t.sha1:
            raise OTAError("hash mismatch", "manifest")
        items = manifest(bytes(mv[:got]).decode(), t, keyed)
        need = 0
        for x in items:
            need += x[1]
        bs, free = _free()
        if free is not None and need + (len(items) + 2) * bs > free:
            raise OTAError("no space", "need %d bytes, %d free" % (need, free))
        got = 0
        c = buf
        for i in range(len(items)):
            sha, left, name = items[i]
            stage = "write failed"
            f = open(NEW + str(i), "wb")
            h = hashlib.sha1()
            while left:
                stage = "transfer broken"
                k = s.readinto(buf if left >= _BUF else mv[:left])
                if not k:
                    raise OTAError("transfer broken", "EOF in %s" % name)
                stage = "write failed"
                if k != len(c):
                    c = buf if k == _BUF else mv[:k]
                f.write(c)
                h.update(c)
                got += k
                left -= k
                if wdt:
                    wdt.feed()
                _step("download")
            f.close()
            f = None
            if hexlify(h.digest()).decode() != sha:
                raise OTAError("hash mismatch", name)
        stage = "size mismatch"
        if s.readinto(mv[:1]):
            raise OTAError("size mismatch", "more than the manifest's %d bytes" % need)
        a = gc.mem_alloc()
        peak = a if a > peak else peak
        buf = mv = c = None
        _step("verified")
        stage = "write failed"
        had = []
        for x in items:
            try:
                os.stat(x[2])
                had.append(1)
            except OSError:
                had.append(0)
        j = {"state": "commit", "token": t.token, "files": [x[2] for x in items],
             "had": had, "boots": 0}
        if extra:
            j.update(extra)
        save(j)
    except OTAError as e:
        st("failed", {"reason": e.reason, "detail": e.detail})
    except OSError as e:
        # a socket timeout is ETIMEDOUT (110) or, on some ports, EAGAIN (11)
        reason = stage
        if e.args and e.args[0] in (11, 110) and stage != "write failed":
            reason = "timeout"
        elif e.args and e.args[0] == 28:
            reason = "no space"
        st("failed", {"reason": reason, "detail": str(e)})
    else:
        st("verified", {"sha1": t.sha1, "bytes": got, "heap": peak - idle})
        return True
    finally:
        s.close()
        if f is not None:
            f.close()
    clean()
    return False
