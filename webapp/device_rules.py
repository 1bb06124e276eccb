"""The device's own trigger rules, run on the server: firmware/ota_trigger.py's parse().

Settings that end up in a trigger (the host devices connect back to, the transfer ports) are
checked with the very code the boards run, so the server cannot advertise what they refuse.
"""
import builtins
import functools
import os
import types

from . import assets

def _trigger_parser_path():
    try:
        return os.path.join(assets.folder("firmware"), "ota_trigger.py")
    except assets.AssetsMissing:
        return os.path.join("firmware", "ota_trigger.py")  # named as missing below


TRIGGER_PARSER = _trigger_parser_path()

# The rest of a sample extended trigger: file name, sha1, size, token.
_SAMPLE_TAIL = "x.py|%s|0|%s" % ("0" * 40, "0" * 32)


class FirmwareNotFound(RuntimeError):
    """firmware/ota_trigger.py is not next to webapp/: the server runs from the project folder."""


@functools.lru_cache(maxsize=None)
def trigger_parser():
    """The firmware's ota_trigger module, loaded once; FirmwareNotFound if the file is missing.

    Its `from micropython import const` gets a stub through the module's own __import__, so
    nothing is added to sys.modules (other code must never see a fake `micropython`).
    """
    try:
        with open(TRIGGER_PARSER, encoding="utf-8") as f:
            source = f.read()
    except FileNotFoundError:
        raise FirmwareNotFound("the device's trigger parser is not at %s: run the server from "
                               "the project folder, next to firmware/" % TRIGGER_PARSER) from None
    stub = types.ModuleType("micropython")
    stub.const = lambda value: value

    def firmware_import(name, *args, **kwargs):
        return stub if name == "micropython" else builtins.__import__(name, *args, **kwargs)

    module = types.ModuleType("dcc_ota_device_trigger")
    module.__file__ = TRIGGER_PARSER
    module.__builtins__ = dict(vars(builtins), __import__=firmware_import)
    exec(compile(source, TRIGGER_PARSER, "exec"), module.__dict__)
    return module


def _problem(host, port):
    parser = trigger_parser()
    # surrogateescape: a non-UTF-8 byte from the environment reaches the parser as that byte
    sample = ("%s|%s|%s" % (host, port, _SAMPLE_TAIL)).encode("utf-8", "surrogateescape")
    try:
        trigger = parser.parse(sample)
    except parser.OTAError as exc:
        return exc.detail
    if trigger.host != host or str(trigger.port) != str(port):
        return "bad host"  # a '|' in it: the device would read other fields
    return None


def host_problem(host):
    """Why a device refuses `host` (str) in a trigger, in its words ('bad host', 'non-ASCII or
    control byte'); None when it accepts it. IPv6 literals are refused: no IPv6 on an ESP8266."""
    return _problem(host, 1)


def port_problem(port):
    """Why a device refuses `port` (int) in a trigger ('bad port'), or None (1..65535)."""
    return _problem("h", port)
