"""The device's own trigger parser, run on the server to vet what goes into a trigger."""
import sys

import pytest

from webapp import device_rules


@pytest.mark.parametrize("host, reason", [
    ("::1", "bad host"),                      # IPv6: MicroPython on an ESP8266 has none
    ("fe80::1", "bad host"),
    ("192.0.2.5", None),
    ("pi.local", None),
    ("a" * 64, None),
    ("a" * 65, "bad host"),                   # the parser takes 1 to 64 characters
    ("pi\u00e9.local", "non-ASCII or control byte"),
    ("a|b", "bad port"),                      # a '|' shifts the trigger's fields
])
def test_host_problem_gives_the_devices_reason(host, reason):
    assert device_rules.host_problem(host) == reason


@pytest.mark.parametrize("port, reason", [(0, "bad port"), (1, None), (65535, None),
                                          (65536, "bad port")])
def test_port_problem_gives_the_devices_reason(port, reason):
    assert device_rules.port_problem(port) == reason


def test_the_firmware_file_is_loaded_once_and_leaves_sys_modules_alone():
    device_rules.trigger_parser.cache_clear()
    before = dict(sys.modules)
    parser = device_rules.trigger_parser()
    assert parser.__file__.endswith("firmware/ota_trigger.py")
    assert device_rules.trigger_parser() is parser
    assert sys.modules.get("micropython") is before.get("micropython")
    assert set(sys.modules) - set(before) == set()


def test_a_missing_firmware_file_is_named(monkeypatch, tmp_path):
    missing = str(tmp_path / "firmware" / "ota_trigger.py")
    monkeypatch.setattr(device_rules, "TRIGGER_PARSER", missing)
    device_rules.trigger_parser.cache_clear()
    try:
        with pytest.raises(device_rules.FirmwareNotFound, match="ota_trigger.py"):
            device_rules.host_problem("pi.local")
    finally:
        device_rules.trigger_parser.cache_clear()
