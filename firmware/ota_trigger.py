# DCC-OTA trigger parsing (docs/protocol.md, "Trigger"): both forms, and the file-name
# rules. Nothing here touches the flash or the network. Kept apart from ota_receiver so
# each module compiles on an ESP8266 (compiling takes several times a module's size).
from micropython import const

_MAX_SIZE = const(16777216)
_MAX_FILES = const(8)
# the safe-boot code (as source or precompiled) and the settings
PROTECTED = ("boot.py", "safeboot.py", "safeboot.mpy", "probation.py", "probation.mpy",
             "journal.py", "journal.mpy", "settings.json")


class OTAError(Exception):
    # A push failed for one named reason (a protocol failure reason).

    def __init__(self, reason, detail, token="", name=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.token = token
        self.name = name


class Trigger:
    # A parsed trigger; size is None and token "" in the legacy form. kv: the key=value
    # fields (str -> str, unknown keys kept and ignored); bundle: the file count of a bundle
    # trigger, else 0; signed: set by ota_auth.check() on a good signature.

    def __init__(self, host, port, name, sha1, size=None, token="", kv=None):
        self.host = host
        self.port = port
        self.name = name
        self.sha1 = sha1
        self.size = size
        self.token = token
        self.kv = kv or {}
        self.bundle = 0
        self.signed = False


def is_hex(s, n):
    # s is n lowercase hex digits (no generator: this runs on a full heap too)
    if len(s) != n:
        return False
    for c in s:
        if c not in "0123456789abcdef":
            return False
    return True


def _num(s, lo, hi):
    # decimal digits only (no sign, no spaces), at most 8 of them
    if not 0 < len(s) <= 8 or not s.isdigit():  # (ASCII: parse checked it)
        return None
    n = int(s)
    return n if lo <= n <= hi else None


def bad_name(name):
    # Why name may not be written to, or None when it is a safe target.
    if not 0 < len(name) <= 64:
        return "name length"
    if name == "settings.json":
        return "settings.json is protected"
    if name[0] == "/":
        return "absolute name"
    if name.count("/") > 1:
        return "more than one folder level"
    for seg in name.split("/"):
        if not seg:
            return "empty name segment"
        if seg[0] == ".":
            return "dot name"
    for c in name:
        if not " " < c < "\x7f" or c == "|":
            return "bad character"
    return None


def parse(payload):
    # Parse a trigger (bytes); return a Trigger or raise OTAError("malformed").
    f = payload.split(b"|")
    n = len(f)
    token = ""
    if n > 5 and len(f[5]) == 32:
        try:
            token = f[5].decode()
        except UnicodeError:
            pass
        if not is_hex(token, 32):
            token = ""
    for b in payload:
        # ASCII only, no spaces or control characters (checked before decoding)
        if not 0x20 < b < 0x7F:
            raise OTAError("malformed", "non-ASCII or control byte", token)
    for i in range(n):  # field by field: no second copy of the whole trigger
        f[i] = f[i].decode()
    if n < 4 or n == 5:
        raise OTAError("malformed", "%d fields" % n, token)
    ok = 0 < len(f[0]) <= 64
    for c in f[0]:
        if not (c.isalpha() or c.isdigit() or c in ".-_"):
            ok = False
            break
    if not ok:
        raise OTAError("malformed", "bad host", token)
    port = _num(f[1], 1, 65535)
    if port is None:
        raise OTAError("malformed", "bad port", token)
    why = bad_name(f[2])
    if why:
        raise OTAError("malformed", why, token)
    name = f[2]
    if not is_hex(f[3], 40):
        raise OTAError("malformed", "bad sha1", token, name)
    if n == 4:
        return Trigger(f[0], port, name, f[3])
    size = _num(f[4], 0, _MAX_SIZE)
    if size is None:
        raise OTAError("malformed", "bad size", token, name)
    if not token:
        raise OTAError("malformed", "bad token", "", name)
    kv = {}
    for x in f[6:]:
        i = x.find("=")
        if i < 1:
            raise OTAError("malformed", "bad key=value", token, name)
        kv[x[:i]] = x[i + 1:]
    t = Trigger(f[0], port, name, f[3], size, token, kv)
    if "bundle" in kv:
        t.bundle = _num(kv["bundle"], 1, _MAX_FILES) or 0
        if not t.bundle:
            raise OTAError("malformed", "bad bundle count", token, name)
    return t


def protected(name, t, keyed):
    # Why the push t may not replace name (the safe-boot code, settings.json), or None.
    # keyed: the device has a key (ota_auth lists "sig"): then only a signed force=1 does.
    if name not in PROTECTED:
        return None
    if t.kv.get("force") != "1":
        return name + " needs force=1"
    if t.signed or (not keyed and name != "settings.json"):
        return None
    return name + " needs a signed trigger"
