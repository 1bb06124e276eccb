import json

import pytest

from webapp.manifest import BadPayload, check_targets
from webapp.push.trigger import build_trigger, parse_device_status


def test_the_legacy_trigger_is_exactly_the_seeds_four_fields():
    assert build_trigger("192.168.1.2", 4000, "main.py", "a" * 40) == \
        "192.168.1.2|4000|main.py|" + "a" * 40


def test_the_extended_trigger_adds_size_and_token():
    t = build_trigger("10.0.0.1", 4001, "lib/x.py", "b" * 40, 3800, "c" * 32)
    assert t.split("|") == ["10.0.0.1", "4001", "lib/x.py", "b" * 40, "3800", "c" * 32]


def test_device_status_is_read():
    s = parse_device_status(json.dumps({"token": "t", "state": "failed", "reason": "no space",
                                        "detail": "need 9000"}).encode())
    assert (s["state"], s["reason"], s["detail"]) == ("failed", "no space", "need 9000")


@pytest.mark.parametrize("payload", [
    b"", b"nope", b"[]", b'{"state": "dancing"}', b'{"state": "failed", "reason": 5}',
    b'{"state": "verified", "pad": "' + b"x" * 3000 + b'"}',
])
def test_malformed_device_status_is_refused(payload):
    with pytest.raises(ValueError):
        parse_device_status(payload)


@pytest.mark.parametrize("target", ["boot.py", "safeboot.py", "probation.py", "safeboot.mpy",
                                    "probation.mpy", "journal.py", "journal.mpy"])
def test_the_safe_boot_code_needs_force(target):
    with pytest.raises(BadPayload, match="safe-boot code"):
        check_targets([target])
    assert check_targets([target], force=True) == [target]
