"""The naming rules of docs/protocol.md, shared by the CLI, the API and the MQTT handlers."""
import re
import unicodedata

_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SEGMENT = re.compile(r"[^\x00-\x20\x7f/\\|]+")
MAX_TARGET = 64
RESERVED = ("settings.json",)


def is_reserved(name):
    """Whether `name` is the device's settings file, in any case: a board's FAT file system
    takes SETTINGS.JSON for settings.json."""
    return name.lower() in RESERVED


class BadName(ValueError):
    """A device or file name breaks the protocol's naming rules; the message says which."""


def is_device_name(name):
    return isinstance(name, str) and _DEVICE.fullmatch(name) is not None


def check_device_name(name):
    if not is_device_name(name):
        raise BadName("device names are 1 to 32 letters, digits, '_' or '-': %r" % name)
    return name


def check_target(name):
    """A file name as it will be on the device: relative, at most one sub-folder."""
    if not isinstance(name, str):
        raise BadName("the file name on the device must be a string")
    if not name:
        raise BadName("the file name on the device is empty")
    if len(name) > MAX_TARGET:
        raise BadName("the file name on the device is longer than %d characters" % MAX_TARGET)
    if not name.isascii():
        raise BadName("the file name on the device must be ASCII: %r" % name)
    if name.startswith("/"):
        raise BadName("the file name on the device must be relative, not %r" % name)
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadName("the file name on the device has an empty, '.' or '..' part: %r" % name)
        if part.startswith("."):
            raise BadName("names starting with '.' are the device's own: %r" % name)
        if not _SEGMENT.fullmatch(part):
            raise BadName("the file name on the device has a space, a control character, '\\' "
                          "or '|': %r" % name)
    if len(parts) > 2:
        raise BadName("the file name on the device may have one sub-folder at most: %r" % name)
    if is_reserved(name):
        raise BadName("%s holds the device's settings and is not replaced by a push" % name)
    return name


MAX_DISPLAY = 128
# Unicode categories that are not seen, or that change how the rest is seen: controls (C0, C1
# such as U+0085), format characters (U+202E right-to-left override, U+200B zero width space),
# surrogates, private use, line and paragraph separators (U+2028, U+2029).
_INVISIBLE = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


def check_display_name(name):
    """An uploaded file's shown name: any language, but never a path that climbs or is absolute."""
    if not isinstance(name, str) or not name.strip():
        raise BadName("the file has no name")
    if len(name) > MAX_DISPLAY:
        raise BadName("the file name is longer than %d characters" % MAX_DISPLAY)
    if any(unicodedata.category(c) in _INVISIBLE for c in name) or "\\" in name:
        raise BadName("the file name has a control, format or separator character (one "
                      "that hides or reorders what is shown) or a backslash: %r" % name)
    if name.startswith("/"):
        raise BadName("the file name must be relative, not %r" % name)
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadName("the file name has an empty, '.' or '..' part: %r" % name)
    if len(parts) > 2:
        raise BadName("the file name may have one sub-folder at most: %r" % name)
    return name
