"""Trigger parsing (firmware/ota_trigger.py, used by ota_receiver) on CPython and on the
real MicroPython interpreter that runs on boards: both forms and every malformed case."""
import pytest

from tests.support.firmware import load
from tests.support.micropython import run_cases

ota = load("ota_trigger")

SHA = "0123456789abcdef0123456789abcdef01234567"
TOK = "fedcba9876543210fedcba9876543210"


def ext(name="main.py", host="192.168.1.5", port="4711", sha=SHA, size="3800", tok=TOK,
        extra=()):
    return "|".join([host, port, name, sha, size, tok] + list(extra)).encode()


def legacy(name="main.py", host="192.168.1.5", port="4711", sha=SHA):
    return "|".join([host, port, name, sha]).encode()


# (id, payload, expected): expected is a dict of Trigger fields, or the malformed detail
GOOD = [
    ("legacy", legacy(), dict(host="192.168.1.5", port=4711, name="main.py", sha1=SHA,
                              size=None, token="")),
    ("extended", ext(), dict(host="192.168.1.5", port=4711, name="main.py", sha1=SHA,
                             size=3800, token=TOK)),
    ("extended+keys", ext(extra=["bundle=1", "sig=abc"]), dict(size=3800, token=TOK)),
    ("subfolder", ext(name="lib/util.py"), dict(name="lib/util.py")),
    ("hostname", ext(host="ota-server.lan"), dict(host="ota-server.lan")),
    ("size 0", ext(size="0"), dict(size=0)),
    ("size max", ext(size="16777216"), dict(size=16777216)),
    ("port bounds", ext(port="65535"), dict(port=65535)),
    ("64-char name", ext(name="a" * 61 + ".py"), dict(name="a" * 61 + ".py")),
    ("boot.py", legacy(name="boot.py"), dict(name="boot.py")),
]
BAD = [
    ("3 fields", b"1.2.3.4|80|main.py", "3 fields"),
    ("5 fields", legacy() + b"|3800", "5 fields"),
    ("empty", b"", "1 fields"),
    ("empty host", ext(host=""), "bad host"),
    ("long host", ext(host="h" * 65), "bad host"),
    ("port 0", ext(port="0"), "bad port"),
    ("port 65536", ext(port="65536"), "bad port"),
    ("port word", ext(port="http"), "bad port"),
    ("port sign", ext(port="+80"), "bad port"),
    ("port empty", legacy(port=""), "bad port"),
    ("sha upper", ext(sha=SHA.upper()), "bad sha1"),
    ("sha short", ext(sha=SHA[:39]), "bad sha1"),
    ("sha not hex", ext(sha="g" * 40), "bad sha1"),
    ("size negative", ext(size="-1"), "bad size"),
    ("size too big", ext(size="16777217"), "bad size"),
    ("size word", ext(size="lots"), "bad size"),
    ("size empty", ext(size=""), "bad size"),
    ("token short", ext(tok=TOK[:31]), "bad token"),
    ("token upper", ext(tok=TOK.upper()), "bad token"),
    ("bad key=value", ext(extra=["novalue"]), "bad key=value"),
    ("empty key", ext(extra=["=1"]), "bad key=value"),
    ("dotdot", ext(name="../x"), "dot name"),
    ("dotdot inside", ext(name="lib/../x"), "more than one folder level"),
    ("absolute", ext(name="/etc/passwd"), "absolute name"),
    ("two folders", ext(name="a/b/c"), "more than one folder level"),
    ("settings", ext(name="settings.json"), "settings.json is protected"),
    ("ota part", ext(name=".ota.part"), "dot name"),
    ("dot in folder", ext(name="lib/.hidden"), "dot name"),
    ("dot folder", ext(name=".git/x"), "dot name"),
    ("empty name", ext(name=""), "name length"),
    ("long name", ext(name="a" * 65), "name length"),
    ("trailing slash", ext(name="lib/"), "empty name segment"),
    ("tab", ext(name="ma\tin.py"), "non-ASCII or control byte"),
    ("newline", ext(name="main.py\n"), "non-ASCII or control byte"),
    ("nul", ext(name="main\x00.py"), "non-ASCII or control byte"),
    ("space", ext(name="my main.py"), "non-ASCII or control byte"),
    ("non-ASCII", ext(name="m\u00e4in.py"), "non-ASCII or control byte"),
    ("invalid UTF-8", ext().replace(b"main", b"m\xffin"), "non-ASCII or control byte"),
    ("DEL", ext(name="main\x7f.py"), "non-ASCII or control byte"),
]


def run_cpython(payload):
    try:
        t = ota.parse(payload)
    except ota.OTAError as e:
        return {"reason": e.reason, "detail": e.detail, "token": e.token}
    return {"host": t.host, "port": t.port, "name": t.name, "sha1": t.sha1, "size": t.size,
            "token": t.token}


def check(result, expected):
    if isinstance(expected, str):
        assert result["reason"] == "malformed", result
        assert result["detail"] == expected, result
    else:
        assert "reason" not in result, result
        for k, v in expected.items():
            assert result[k] == v, (k, result)


@pytest.mark.parametrize("payload, expected", [c[1:] for c in GOOD + BAD],
                         ids=[c[0] for c in GOOD + BAD])
def test_parse_cpython(payload, expected):
    check(run_cpython(payload), expected)


def test_malformed_keeps_a_readable_token():
    with pytest.raises(ota.OTAError) as e:
        ota.parse(ext(name="../x"))
    assert e.value.token == TOK
    with pytest.raises(ota.OTAError) as e:
        ota.parse(ext(name="m\u00e4in.py"))
    assert e.value.token == TOK
    with pytest.raises(ota.OTAError) as e:
        ota.parse(ext(tok="nope"))
    assert e.value.token == ""


def test_bad_name_accepts_the_ordinary():
    for name in ("main.py", "lamp.py", "lib/util.py", "data/blob.bin", "a-b_c.py"):
        assert ota.bad_name(name) is None, name


MPY_RUNNER = r"""
import sys, json
from binascii import unhexlify
import ota_trigger as ota
for h in json.load(open(sys.argv[1])):
    try:
        t = ota.parse(unhexlify(h))
        r = {"host": t.host, "port": t.port, "name": t.name, "sha1": t.sha1,
             "size": t.size, "token": t.token}
    except ota.OTAError as e:
        r = {"reason": e.reason, "detail": e.detail, "token": e.token}
    print(json.dumps(r))
"""


def test_parse_on_real_micropython(tmp_path):
    cases = GOOD + BAD
    results = run_cases(MPY_RUNNER, [c[1].hex() for c in cases], tmp_path)
    assert len(results) == len(cases)
    for (name, payload, expected), got in zip(cases, results):
        check(got, expected)
        assert got == run_cpython(payload), name
