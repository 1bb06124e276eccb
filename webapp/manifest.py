"""What a push carries: one file, or a bundle of several with a manifest (docs/protocol.md),
and the rules a push's names must pass before a device sees them: the naming rules, the
safe-boot code, deletes of the runtime, and files and folders that cannot both be."""
import functools
import hashlib
import os
from dataclasses import dataclass

from . import assets
from .names import check_target, is_reserved

MAX_FILES = 8
MAX_MANIFEST = 1024
# The safe-boot code (as source or precompiled): a broken one can stop a board from booting.
# (journal.py: safeboot and probation run on it; firmware/README.md.)
PROTECTED = ("boot.py", "safeboot.py", "safeboot.mpy", "probation.py", "probation.mpy",
             "journal.py", "journal.mpy")


@functools.lru_cache(maxsize=1)
def runtime_files():
    """The names of the firmware's own files on a board (every *.py directly in firmware/,
    and its precompiled .mpy): without them a device cannot stay reachable, so a delete of
    one needs force, as a replace of the safe-boot code does."""
    try:
        mods = [n[:-3] for n in os.listdir(assets.folder("firmware")) if n.endswith(".py")]
    except (OSError, assets.AssetsMissing):
        mods = []
    return frozenset(m + ext for m in mods for ext in (".py", ".mpy"))


def is_protected(target):
    """Whether `target` is the safe-boot code, in any case (a board's FAT file system takes
    BOOT.PY for boot.py)."""
    return target.lower() in PROTECTED


def is_runtime(target):
    """Whether `target` is one of the firmware's own files (runtime_files), in any case."""
    return target.lower() in runtime_files()


class BadPayload(ValueError):
    """The set of files cannot be pushed as asked; the message says why."""


@dataclass(frozen=True)
class Item:
    """One stored file and the name it takes on the device; `file` None deletes `target`."""
    file: object  # filestore.StoredFile, or None
    target: str

    @property
    def delete(self):
        return self.file is None


def check_targets(targets, force=False, deletes=()):
    """Names, duplicates, count and protected files of one push's names on the device
    (`deletes`: the names among them that the push deletes); BadPayload says what is wrong."""
    if not targets:
        raise BadPayload("choose at least one file")
    if len(targets) > MAX_FILES:
        raise BadPayload("a push carries at most %d files to write or delete" % MAX_FILES)
    seen = set()
    for target in targets:
        if target in deletes and is_reserved(target):
            raise BadPayload("%s holds the device's settings and is never deleted" % target)
        check_target(target)
        if target in seen:
            raise BadPayload("%s is named twice in one push" % target)
        seen.add(target)
        verb = "delete" if target in deletes else "push"
        if is_protected(target) and not force:
            raise BadPayload("%s is the safe-boot code: a broken one can stop the board from "
                             "booting; confirm you know (force) to %s it" % (target, verb))
        if verb == "delete" and is_runtime(target) and not force:
            raise BadPayload("%s is part of the device's runtime: without it the board cannot "
                             "stay reachable; confirm you know (force) to delete it" % target)
    for target in targets:  # the folder of one is another: no rename could place both
        folder = target.partition("/")[0]
        if folder != target and folder in seen:
            raise BadPayload("%s and %s cannot both be: one is a file, the other a folder"
                             % (folder, target))
    return targets


def check_items(items, force=False):
    """check_targets, and the manifest's size; returns the items."""
    check_targets([i.target for i in items], force, {i.target for i in items if i.delete})
    if len(manifest(items)) > MAX_MANIFEST:
        raise BadPayload("the file names are too long for one manifest (%d bytes at most)"
                         % MAX_MANIFEST)
    return items


def check_fit(items, device_files):
    """Each name against the device's files as its last heartbeat listed them ({name: sha1},
    one folder level): the rules the device applies to a manifest, so that a push it would
    refuse is refused here first. BadPayload says why."""
    folders = {n.partition("/")[0] for n in device_files if "/" in n}
    for i in items:
        folder = i.target.partition("/")[0]
        if i.target in folders:
            raise BadPayload("%s is a folder on the device" % i.target)
        if folder != i.target and folder in device_files:
            raise BadPayload("%s is a file on the device" % folder)
        if i.delete and i.target not in device_files:
            raise BadPayload("%s is not on the device" % i.target)
    return items


def manifest(items):
    """The bundle manifest, in stream order: `<sha1> <size> <name>` per file written,
    `- - <name>` per file deleted."""
    return "".join("- - %s\n" % i.target if i.delete else
                   "%s %d %s\n" % (i.file.sha1, i.file.size, i.target) for i in items).encode()


def manifest_sha1(data):
    return hashlib.sha1(data).hexdigest()
