"""The bundle manifest (firmware/ota_bundle.py, docs/protocol.md "Safe updates") on CPython
and on the real MicroPython interpreter that runs on boards: good manifests and every
malformed or refused one, with the same answers from both."""
import sys
from unittest import mock

import pytest

from tests.support.firmware import load
from tests.support.micropython import run_cases

_saved = {n: sys.modules.get(n) for n in ("journal", "ota_trigger", "ota_receiver",
                                          "ota_bundle")}
# ota_bundle imports journal and ota_trigger (and ota_receiver) by name
jn = load("journal", register=True)
ota = load("ota_trigger", register=True)
rx = load("ota_receiver", register=True)
ob = load("ota_bundle", register=True)
for _n, _m in _saved.items():  # leave sys.modules as found
    if _m is None:
        sys.modules.pop(_n)
    else:
        sys.modules[_n] = _m

A = "0123456789abcdef0123456789abcdef01234567"
B = "fedcba9876543210fedcba9876543210fedcba98"


def lines(*rows):
    return "".join("%s %s %s\n" % r for r in rows).encode()


ONE = lines((A, 3800, "main.py"))
THREE = lines((A, 3800, "main.py"), (B, 0, "lib/util.py"), (A, 99999999, "notes.txt"))
EIGHT = lines(*[(A, i, "f%d.py" % i) for i in range(8)])

# (id, manifest bytes, trigger fields, expected): expected is the [sha1, size, name] list,
# or (reason, detail). Trigger fields: n files (bundle=n), kv, keyed device, signed trigger.
GOOD = [
    ("one file", ONE, {"n": 1}, [[A, 3800, "main.py"]]),
    ("three files", THREE, {"n": 3},
     [[A, 3800, "main.py"], [B, 0, "lib/util.py"], [A, 99999999, "notes.txt"]]),
    ("eight files", EIGHT, {"n": 8}, [[A, i, "f%d.py" % i] for i in range(8)]),
    ("boot.py forced", lines((A, 5, "boot.py")), {"n": 1, "kv": {"force": "1"}},
     [[A, 5, "boot.py"]]),
    ("safeboot.py forced", lines((A, 5, "safeboot.py")), {"n": 1, "kv": {"force": "1"}},
     [[A, 5, "safeboot.py"]]),
    ("settings signed", lines((A, 5, "settings.json")),
     {"n": 1, "kv": {"force": "1"}, "keyed": True, "signed": True}, [[A, 5, "settings.json"]]),
]
BAD = [
    ("hash upper", lines((A.upper(), 1, "main.py")), {"n": 1},
     ("malformed", "bad manifest line")),
    ("hash short", lines((A[:39], 1, "main.py")), {"n": 1}, ("malformed", "bad manifest line")),
    ("hash not hex", lines(("g" * 40, 1, "main.py")), {"n": 1},
     ("malformed", "bad manifest line")),
    ("size negative", lines((A, -1, "main.py")), {"n": 1}, ("malformed", "bad manifest line")),
    ("size sign", lines((A, "+1", "main.py")), {"n": 1}, ("malformed", "bad manifest line")),
    ("size 9 digits", lines((A, 123456789, "main.py")), {"n": 1},
     ("malformed", "bad manifest line")),
    ("size word", lines((A, "lots", "main.py")), {"n": 1}, ("malformed", "bad manifest line")),
    ("size hex", lines((A, "0x10", "main.py")), {"n": 1}, ("malformed", "bad manifest line")),
    ("two spaces", b"%s  1 main.py\n" % A.encode(), {"n": 1},
     ("malformed", "bad manifest line")),
    ("tabs", b"%s\t1\tmain.py\n" % A.encode(), {"n": 1}, ("malformed", "bad manifest line")),
    ("four fields", b"%s 1 main.py x\n" % A.encode(), {"n": 1},
     ("malformed", "bad manifest line")),
    ("empty line", ONE + b"\n" + lines((B, 2, "x.py")), {"n": 2},
     ("malformed", "bad manifest line")),
    ("CRLF", ONE.replace(b"\n", b"\r\n"), {"n": 1}, ("malformed", "main.py\r: bad character")),
    ("no final newline", ONE[:-1], {"n": 1},
     ("malformed", "manifest does not list 1 files")),
    ("empty", b"", {"n": 1}, ("malformed", "manifest does not list 1 files")),
    ("fewer than announced", ONE, {"n": 2}, ("malformed", "manifest does not list 2 files")),
    ("more than announced", THREE, {"n": 2}, ("malformed", "manifest does not list 2 files")),
    ("too many files", EIGHT + lines((A, 8, "f8.py")), {"n": 8},
     ("malformed", "manifest does not list 8 files")),
    ("named twice", lines((A, 1, "main.py"), (B, 2, "main.py")), {"n": 2},
     ("malformed", "main.py named twice")),
    ("dotdot", lines((A, 1, "../x")), {"n": 1}, ("malformed", "../x: dot name")),
    ("ota temporary", lines((A, 1, ".ota/new/0")), {"n": 1},
     ("malformed", ".ota/new/0: more than one folder level")),
    ("absolute", lines((A, 1, "/main.py")), {"n": 1}, ("malformed", "/main.py: absolute name")),
    ("long name", lines((A, 1, "a" * 65)), {"n": 1},
     ("malformed", "%s: name length" % ("a" * 65))),
    ("pipe", lines((A, 1, "a|b")), {"n": 1}, ("malformed", "a|b: bad character")),
    ("non-ASCII name", lines((A, 1, "m\u00e4in.py")), {"n": 1},
     ("malformed", "m\u00e4in.py: bad character")),
    ("boot.py", lines((A, 1, "main.py"), (A, 1, "boot.py")), {"n": 2},
     ("rejected", "boot.py needs force=1")),
    ("safeboot.py", lines((A, 1, "safeboot.py")), {"n": 1},
     ("rejected", "safeboot.py needs force=1")),
    ("probation.py", lines((A, 1, "probation.py")), {"n": 1},
     ("rejected", "probation.py needs force=1")),
    ("settings.json", lines((A, 1, "settings.json")), {"n": 1},
     ("rejected", "settings.json needs force=1")),
    ("settings.json unkeyed", lines((A, 1, "settings.json")), {"n": 1, "kv": {"force": "1"}},
     ("rejected", "settings.json needs a signed trigger")),
    ("boot.py keyed unsigned", lines((A, 1, "boot.py")),
     {"n": 1, "kv": {"force": "1"}, "keyed": True}, ("rejected", "boot.py needs a signed trigger")),
]
# Checked against the flash (make_flash): a name that cannot be placed, deletes
DEL = b"- - notes.txt\n"
FLASH = [
    ("a folder where a file goes", lines((A, 1, "tools/helper.py")), {"n": 1},
     ("rejected", "tools is a file on the device")),
    ("a file where a folder is", lines((A, 1, "pkg")), {"n": 1},
     ("rejected", "pkg is a folder on the device")),
    ("an empty folder", lines((A, 1, "empty")), {"n": 1},
     ("rejected", "empty is a folder on the device")),
    ("a file and a folder in one push", lines((A, 1, "x"), (B, 2, "x/y.py")), {"n": 2},
     ("malformed", "x and x/y.py: a file and a folder")),
    ("a folder and a file in one push", lines((B, 2, "x/y.py"), (A, 1, "x")), {"n": 2},
     ("malformed", "x/y.py and x: a file and a folder")),
    ("into an existing folder", lines((A, 1, "pkg/new.py")), {"n": 1}, [[A, 1, "pkg/new.py"]]),
    ("delete", DEL, {"n": 1}, [["-", 0, "notes.txt"]]),
    ("delete what is not there", b"- - gone.txt\n", {"n": 1}, [["-", 0, "gone.txt"]]),
    ("delete and write", DEL + lines((A, 7, "log/today.txt")), {"n": 2},
     [["-", 0, "notes.txt"], [A, 7, "log/today.txt"]]),
    ("delete in a folder", b"- - pkg/mod.py\n", {"n": 1}, [["-", 0, "pkg/mod.py"]]),
    ("delete a folder", b"- - pkg\n", {"n": 1}, ("rejected", "pkg is a folder on the device")),
    ("delete main.py", b"- - main.py\n", {"n": 1},
     ("rejected", "main.py is the device's runtime: deleting it needs force=1")),
    ("delete a loaded module", b"- - ota_trigger.py\n", {"n": 1},
     ("rejected", "ota_trigger.py is the device's runtime: deleting it needs force=1")),
    ("delete main.py forced", b"- - main.py\n", {"n": 1, "kv": {"force": "1"}},
     [["-", 0, "main.py"]]),
    ("delete boot.py", b"- - boot.py\n", {"n": 1}, ("rejected", "boot.py needs force=1")),
    ("delete settings.json", b"- - settings.json\n", {"n": 1, "kv": {"force": "1"}},
     ("rejected", "settings.json needs a signed trigger")),
    ("delete with a size", b"- 0 notes.txt\n", {"n": 1}, ("malformed", "bad manifest line")),
    ("delete without a name", b"- -\n", {"n": 1}, ("malformed", "bad manifest line")),
    ("delete twice", DEL + DEL, {"n": 2}, ("malformed", "notes.txt named twice")),
]
# Through read_manifest (the bytes off the socket, decoded and SHA-1 checked) and start().
STREAM = [
    ("read: good", THREE, {"n": 3, "via": "read"}, GOOD[1][3]),
    ("read: hash mismatch", ONE, {"n": 1, "via": "read", "sha1": B},
     ("hash mismatch", "manifest")),
    ("read: short stream", ONE, {"n": 1, "via": "read", "size": len(ONE) + 1},
     ("transfer broken", "EOF in the manifest")),
    ("read: invalid UTF-8", b"%s 1 m\xffin.py\n" % A.encode(), {"n": 1, "via": "read"},
     ("malformed", "manifest is not UTF-8")),
    ("start: too long", EIGHT, {"n": 8, "via": "start", "size": ob.MAX + 1},
     ("malformed", "manifest over 1024 bytes")),
]
CASES = GOOD + BAD + FLASH + STREAM


# One runner for both interpreters: the same code, so the answers are compared, not copied.
RUNNER = r"""
import hashlib
from binascii import hexlify
import ota_trigger as ota
import ota_bundle as ob

class FakeSocket:
    def __init__(self, data):
        self.data = data
    def readinto(self, mv):
        k = min(len(mv), len(self.data), 100)
        mv[:k] = self.data[:k]
        self.data = self.data[k:]
        return k

def run(text, f):
    t = ota.Trigger("h", 1, "bundle", f.get("sha1") or
                    hexlify(hashlib.sha1(text).digest()).decode(),
                    f.get("size", len(text)), "t" * 32, f.get("kv"))
    t.bundle = f["n"]
    t.signed = f.get("signed", False)
    via = f.get("via", "parse")
    try:
        if via == "start":
            err = ob.start(t)
            return {"reason": "malformed", "detail": err} if err else {"items": None}
        if via == "read":
            buf = bytearray(ob.MAX)
            items = ob.read_manifest(FakeSocket(text), memoryview(buf), t,
                                     f.get("keyed", False))
        else:
            items = ob.parse_manifest(text.decode(), t, f.get("keyed", False))
    except ota.OTAError as e:
        return {"reason": e.reason, "detail": e.detail}
    except Exception as e:
        return {"error": type(e).__name__}
    return {"items": [list(x) for x in items]}
"""


def make_flash(root):
    """The flash the cases run on: the runtime's files, a file `tools`, a folder `pkg`
    holding a module, an empty folder, notes, and the backup slot."""
    for name in ("main.py", "ota_trigger.py", "boot.py", "notes.txt", "tools", "pkg/mod.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x = 1\n")
    (root / "empty").mkdir()
    (root / ".ota" / "old").mkdir(parents=True)


@pytest.fixture(scope="module")
def flash(tmp_path_factory):
    root = tmp_path_factory.mktemp("flash")
    make_flash(root)
    return root


def run_cpython(text, f):
    # read_manifest imports ota_receiver (and ota_bundle journal and ota_trigger) by name, as
    # on the board
    with mock.patch.dict(sys.modules, {"journal": jn, "ota_trigger": ota, "ota_receiver": rx,
                                       "ota_bundle": ob}):
        ns = {}
        exec(RUNNER, ns)
        return ns["run"](text, f)


def check(result, expected):
    if isinstance(expected, tuple):
        assert (result.get("reason"), result.get("detail")) == expected, result
    else:
        assert result == {"items": expected}, result


@pytest.mark.parametrize("text, fields, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_manifest_cpython(text, fields, expected, flash, monkeypatch):
    monkeypatch.chdir(flash)
    check(run_cpython(text, fields), expected)


MPY_RUNNER = RUNNER + r"""
import sys, json, os
from binascii import unhexlify

os.chdir("flash")  # beside the runner: the script's own folder is on the import path

for h, f in json.load(open(sys.argv[1])):
    print(json.dumps(run(unhexlify(h), f)))
"""


def test_manifest_on_real_micropython(tmp_path, monkeypatch):
    make_flash(tmp_path / "flash")
    results = run_cases(MPY_RUNNER, [[c[1].hex(), c[2]] for c in CASES], tmp_path)
    assert len(results) == len(CASES)
    monkeypatch.chdir(tmp_path / "flash")
    wrong = []
    for (name, text, fields, expected), got in zip(CASES, results):
        try:
            check(got, expected)
            assert got == run_cpython(text, fields)
        except AssertionError as e:
            wrong.append((name, str(e)))
    assert wrong == []
