"""firmware/ota_auth.py: signed triggers checked exactly as webapp.keys.sign makes them, under
CPython and under the real MicroPython (docs/protocol.md, "Signed triggers")."""
import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pytest

from dcc_sim.launcher import find_micropython
from tests.support.firmware import load

from webapp import keys

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
MICROPYTHON = find_micropython()
KEY = "0f" * 16 + "a5" * 16
BASE = "10.0.0.2|4321|main.py|" + "a" * 40 + "|12|" + "b" * 32


class Trig:
    """What ota_trigger.parse returns, as far as ota_auth looks."""
    signed = False


@pytest.fixture
def auth(tmp_path, monkeypatch):
    """A fresh ota_auth (its key cache empty) on a flash folder with the key in settings."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"id": "lamp1", "key": KEY}))
    return load("ota_auth")


def signed(ctr, sha256=True, base=BASE, key=KEY):
    return keys.sign(base, key, ctr, sha256).encode()


def flip(payload):
    """The payload with its last hex digit changed."""
    return payload[:-1] + (b"1" if payload.endswith(b"0") else b"0")


def check(auth, payload):
    t = Trig()
    return auth.check(payload, t), t.signed


def test_hmac_matches_the_standard_one(auth):
    for key in (b"", b"k", bytes(range(32)), bytes(64)):
        for msg in (b"", b"x" * 1000):
            for h in (hashlib.sha1, hashlib.sha256):
                assert auth.hmac_digest(key, msg, h) == hmac.new(key, msg, h).digest()


@pytest.mark.parametrize("sha256", [True, False], ids=["sha256", "sha1"])
def test_a_server_signed_trigger_is_taken_and_its_counter_stored(auth, tmp_path, sha256):
    assert check(auth, signed(7, sha256)) == (None, True)
    assert (tmp_path / ".ota" / "counter").read_text() == "7"
    assert sorted(p.name for p in (tmp_path / ".ota").iterdir()) == ["counter"]  # no temp left
    assert check(auth, signed(8, sha256)) == (None, True)
    assert (tmp_path / ".ota" / "counter").read_text() == "8"


def test_a_replayed_or_older_trigger_is_rejected(auth, tmp_path):
    first = signed(5)
    assert check(auth, first) == (None, True)
    assert check(auth, first) == ("old counter", False)
    assert check(auth, signed(4)) == ("old counter", False)
    assert (tmp_path / ".ota" / "counter").read_text() == "5"


@pytest.mark.parametrize("payload,why", [
    (BASE.encode(), "unsigned trigger"),
    (b"10.0.0.2|4321|main.py|" + b"a" * 40, "unsigned trigger"),  # legacy form
    (BASE.encode() + b"|ctr=9", "unsigned trigger"),
    (signed(9, key="11" * 32), "bad signature"),  # another device's key
    (signed(9).replace(b"main.py", b"evil.py"), "bad signature"),  # a field changed
    (signed(9).replace(b"ctr=9", b"ctr=99"), "bad signature"),  # the counter changed
    (flip(signed(9)), "bad signature"),  # one hex digit of the signature
    (signed(9)[:-64] + signed(9)[-64:].upper(), "bad signature"),
    (signed(9)[:-2], "bad signature"),  # 62 hex digits
    (signed(9) + b"|force=1", "bad signature"),  # a field after the signature
    (signed(9).replace(b"|sig=", b"|force=1|sig="), "bad signature"),  # counter not last
    (BASE.encode() + b"|ctr=1|ctr=9|sig=" + b"0" * 64, "bad signature"),
    (BASE.encode() + b"|ctr=-1|sig=" + b"0" * 64, "bad signature"),
    (BASE.encode() + b"|ctr=99999999999|sig=" + b"0" * 64, "bad signature"),
    (BASE.encode() + b"|ctr=|sig=" + b"0" * 40, "bad signature"),
    (b"|sig=", "bad signature"),
    (b"\xff\x00|ctr=1|sig=" + b"\xff" * 64, "bad signature"),
    (b"|" * 1024, "unsigned trigger"),
])
def test_a_forged_or_unsigned_trigger_is_rejected_and_nothing_written(auth, tmp_path, payload, why):
    assert check(auth, payload) == (why, False)
    assert not (tmp_path / ".ota").exists()


def test_a_device_without_a_key_takes_anything_and_writes_nothing(auth, tmp_path):
    (tmp_path / "settings.json").write_text('{"id": "lamp1"}')
    assert auth.features() == []
    assert check(auth, BASE.encode()) == (None, False)
    assert check(auth, signed(3)) == (None, False)  # signed but unchecked: not "signed"
    assert not (tmp_path / ".ota").exists()


@pytest.mark.parametrize("settings", ['{"key": "abc"}', '{"key": "%s"}' % ("zz" * 32),
                                      '{"key": 5}'])
def test_a_malformed_key_takes_nothing(auth, tmp_path, settings):
    (tmp_path / "settings.json").write_text(settings)
    assert check(auth, signed(3)) == ("bad key in settings", False)
    assert check(auth, BASE.encode()) == ("bad key in settings", False)
    assert auth.features() == ["sig", "sha256"]  # so the server keeps signing


def test_features_and_the_key_is_read_once(auth, tmp_path):
    assert auth.features() == ["sig", "sha256"]
    (tmp_path / "settings.json").unlink()  # cached: a later read costs nothing
    assert check(auth, signed(1)) == (None, True)


def test_a_corrupt_counter_file_counts_as_zero_and_is_replaced(auth, tmp_path):
    (tmp_path / ".ota").mkdir()
    (tmp_path / ".ota" / "counter").write_text("garbage")
    assert check(auth, signed(1)) == (None, True)
    assert (tmp_path / ".ota" / "counter").read_text() == "1"


def test_a_counter_that_cannot_be_stored_is_a_rejection(auth, tmp_path):
    (tmp_path / ".ota").write_text("a file where the folder should be")
    assert check(auth, signed(1)) == ("counter not stored", False)


# The same module on MicroPython (what runs on the board): its hashlib, binascii, bytes.
MP_SCRIPT = """
import sys, ota_auth
class T:
    signed = False
for line in open("cases.txt", "rb").read().split(b"\\n"):
    t = T()
    r = ota_auth.check(line, t)
    print(repr(r), t.signed)
print(ota_auth.features(), open(".ota/counter").read())
"""


def test_micropython_checks_the_same_way(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"key": KEY}))
    (tmp_path / "ota_auth.py").write_text((FIRMWARE / "ota_auth.py").read_text())
    (tmp_path / "run.py").write_text(MP_SCRIPT)
    cases = [signed(3), signed(4, False), signed(4), signed(2), BASE.encode(),
             signed(9).replace(b"main.py", b"evil.py"), signed(5, key="11" * 32),
             b"\xff" * 1000 + b"|ctr=1|sig=" + b"a" * 40, signed(10)]
    (tmp_path / "cases.txt").write_bytes(b"\n".join(cases))
    out = subprocess.run([str(MICROPYTHON), "-X", "heapsize=38wK", "run.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30).stdout.splitlines()
    assert out == ["None True", "None True", "'old counter' False", "'old counter' False",
                   "'unsigned trigger' False", "'bad signature' False",
                   "'bad signature' False", "'bad signature' False", "None True",
                   "['sig', 'sha256'] 10"]
