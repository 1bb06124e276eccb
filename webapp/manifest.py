"""What a push carries: one file, or a bundle of several with a manifest (docs/protocol.md)."""
import hashlib
from dataclasses import dataclass

from .names import check_target

MAX_FILES = 8
MAX_MANIFEST = 1024
# The safe-boot code (as source or precompiled): a broken one can stop a board from booting.
PROTECTED = ("boot.py", "safeboot.py", "safeboot.mpy", "probation.py", "probation.mpy")


class BadPayload(ValueError):
    """The set of files cannot be pushed as asked; the message says why."""


@dataclass(frozen=True)
class Item:
    """One stored file and the name it takes on the device."""
    file: object  # filestore.StoredFile
    target: str


def check_targets(targets, force=False):
    """Names, duplicates, count and protected files of one push's names on the device."""
    if not targets:
        raise BadPayload("choose at least one file")
    if len(targets) > MAX_FILES:
        raise BadPayload("a push carries at most %d files" % MAX_FILES)
    seen = set()
    for target in targets:
        check_target(target)
        if target in seen:
            raise BadPayload("%s is named twice in one push" % target)
        seen.add(target)
        if target in PROTECTED and not force:
            raise BadPayload("%s is the safe-boot code: a broken one can stop the board from "
                             "booting; confirm you know (force) to push it" % target)
    return targets


def check_items(items, force=False):
    """check_targets, and the manifest's size; returns the items."""
    check_targets([i.target for i in items], force)
    if len(manifest(items)) > MAX_MANIFEST:
        raise BadPayload("the file names are too long for one manifest (%d bytes at most)"
                         % MAX_MANIFEST)
    return items


def manifest(items):
    """The bundle manifest: `<sha1> <size> <name>` per line, in stream order."""
    return "".join("%s %d %s\n" % (i.file.sha1, i.file.size, i.target) for i in items).encode()


def manifest_sha1(data):
    return hashlib.sha1(data).hexdigest()
