# DCC-OTA signed triggers, device side (docs/protocol.md, "Signed triggers").
#
# A device with "key" (64 hex digits) in settings.json takes only triggers ending in
# |ctr=<n>|sig=<hex>, where sig is the HMAC of every byte before "|sig=" keyed with the
# key's 32 bytes: HMAC-SHA256 for 64 hex digits, HMAC-SHA1 for 40 (the server picks by the
# "sha256" feature). The counter must be larger than the last accepted one, kept in
# .ota/counter, which is written only after a good signature. A device without a key takes
# anything (and lists no "sig" feature): the server shows it as insecure.
#
# MicroPython has no hmac module, so HMAC (RFC 2104, 64-byte block for both hashes) is
# done here by hand. Memory: one 64-byte pad, two hash objects and a digest per check; the
# payload (at most 1024 bytes, see mqtt_client) is hashed through a memoryview, not copied.
# Unit tests run the same code under CPython against Python's hmac.
import hashlib

from micropython import const

SETTINGS = "settings.json"
COUNTER = ".ota/counter"
_TMP = ".ota/counter.tmp"
_MAX_CTR = const(9)  # digits: a small int on a 32-bit port, a billion triggers

_key = None  # not read yet; then b"" (no key), b"?" (bad key) or the 32 key bytes


def _load_key():
    global _key
    if _key is None:
        k = None
        try:
            import json

            with open(SETTINGS) as f:
                k = json.load(f).get("key")
        except (OSError, ValueError, AttributeError):
            pass  # no settings, not JSON, not an object: no key
        if not k:
            _key = b""
        else:
            try:
                from binascii import unhexlify

                _key = unhexlify(k) if len(k) == 64 else b"?"
            except (ValueError, TypeError):
                _key = b"?"
            if len(_key) != 32:
                _key = b"?"  # fail closed: a key that is there but wrong takes nothing
                print("ota_auth: settings key must be 64 hex digits; rejecting all triggers")
    return _key


def features():
    # The heartbeat's protocol features this module adds.
    if not _load_key():
        return []
    return ["sig", "sha256"] if hasattr(hashlib, "sha256") else ["sig"]


def hmac_digest(key, msg, h):
    # HMAC (RFC 2104) with a key of at most 64 bytes and a 64-byte block.
    pad = bytearray(64)
    pad[: len(key)] = key
    for i in range(64):
        pad[i] ^= 0x36
    d = h(pad)
    d.update(msg)
    inner = d.digest()
    for i in range(64):
        pad[i] ^= 0x6A  # 0x36 ^ 0x5C: the inner pad becomes the outer one
    d = h(pad)
    d.update(inner)
    return d.digest()


def _same(a, b):
    # constant time for equal lengths (the length is public: it names the hash)
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def _digits(b):
    # bytes of decimal digits -> int, else None
    if not 0 < len(b) <= _MAX_CTR:
        return None
    for c in b:
        if not 0x30 <= c <= 0x39:
            return None
    return int(b)


def last_counter():
    try:
        with open(COUNTER, "rb") as f:
            n = _digits(f.read(16).strip())
    except OSError:
        return 0
    return n or 0


def _store_counter(n):
    import os

    try:
        os.mkdir(".ota")
    except OSError:
        pass  # exists
    with open(_TMP, "w") as f:
        f.write(str(n))
    try:
        os.rename(_TMP, COUNTER)
    except OSError:
        # FAT cannot rename over an existing file (LittleFS can, atomically)
        os.remove(COUNTER)
        os.rename(_TMP, COUNTER)


def _verify(key, payload):
    # None when payload is signed with key and its counter is new, else why not.
    i = payload.rfind(b"|sig=")
    if i < 0:
        return "unsigned trigger"
    sig = payload[i + 5 :]
    if len(sig) == 64 and hasattr(hashlib, "sha256"):
        h = hashlib.sha256
    elif len(sig) == 40:
        h = hashlib.sha1
    else:
        return "bad signature"
    # the counter is the last field before the signature, and there is only one
    j = payload.rfind(b"|", 0, i)
    if j < 0 or payload[j + 1 : j + 5] != b"ctr=" or payload.find(b"|ctr=") != j:
        return "bad signature"
    ctr = _digits(payload[j + 5 : i])
    if ctr is None:
        return "bad signature"
    from binascii import hexlify

    if not _same(hexlify(hmac_digest(key, memoryview(payload)[:i], h)), sig):
        return "bad signature"
    if ctr <= last_counter():
        return "old counter"
    _store_counter(ctr)
    return None


def check(payload, trig):
    # Accept (None) or reject (a short detail) the trigger payload, already parsed as trig.
    # On a good signature sets trig.signed and stores the counter. Never raises.
    try:
        trig.signed = False
    except AttributeError:
        pass
    try:
        key = _load_key()
        if not key:
            return None  # no key: an insecure device takes unsigned triggers
        if key == b"?":
            return "bad key in settings"
        why = _verify(key, bytes(payload))
        if why is None:
            trig.signed = True
        return why
    except OSError:
        return "counter not stored"
    except Exception:  # hostile input must never take the device down
        return "bad signature"
