"""Releases: named, immutable sets of files under their names on the device, and what a
device must receive to run one (Release.changes) or which one it runs (Releases.running).

A device converges to a release in one journaled bundle: only the files whose SHA-1 differs
from what its heartbeat lists are sent, and with `delete_extra` the files the release does
not hold are deleted in the same bundle, except those a board needs whatever it runs (KEPT).
"""
import re
import time
from dataclasses import dataclass

from .db import transaction
from . import board_tools
from .manifest import MAX_FILES, BadPayload, Item, check_targets, is_protected, is_runtime
from .names import BadName, check_target, is_reserved

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")  # never "-x" (an option) nor ".x"


class ReleaseError(ValueError):
    """A release cannot be made, found or deleted as asked; the message says why."""


def kept(target):
    """Whether `target` stays on a device whatever release it converges to: its settings, the
    safe-boot code and the firmware's runtime (the board needs them to stay reachable)."""
    return is_reserved(target) or is_protected(target) or is_runtime(target)


def check_release_name(name):
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ReleaseError("a release name is 1 to 48 letters, digits, '_', '.' or '-', "
                           "starting with a letter or digit: %r" % (name,))
    return name


def left_out(path):
    """Whether a folder's file at `path` stays out of a release, as `ota release create`,
    the page and the API all leave it: hidden files and folders (.git, .DS_Store) and
    Python's __pycache__."""
    return any(part.startswith(".") or part == "__pycache__" for part in path.split("/"))


def folder_targets(paths):
    """The names on the device of a folder's files, from their paths in the folder as a
    browser gives them ("lamp-v2/main.py", "lamp-v2/lib/x.py"): the one folder that holds
    them all (the folder dropped) is dropped. BadName when a path is not relative with "/"
    between its parts, or a name breaks the naming rules (names.check_target)."""
    parts = []
    for path in paths:
        split = path.split("/") if isinstance(path, str) else [""]
        if "\\" in path or any(p in ("", ".", "..") for p in split):
            raise BadName("a path in the folder is relative, with '/' between its parts and "
                          "no empty, '.' or '..' part: %r" % (path,))
        parts.append(split)
    if parts and all(len(p) > 1 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    return [check_target("/".join(p)) for p in parts]


@dataclass(frozen=True)
class Release:
    id: int
    name: str
    delete_extra: bool
    created_at: float
    files: tuple  # ((target, filestore.StoredFile), ...), sorted by target

    @property
    def wants(self):
        """{target: sha1}: what a device running it lists in its heartbeat."""
        return {target: f.sha1 for target, f in self.files}

    def changes(self, device_files):
        """The Items a device listing `device_files` ({name: sha1}, its heartbeat) needs to
        run this release: writes of the files that differ, then deletes (delete_extra) of the
        files it does not hold; [] when it runs it already."""
        items = [Item(f, target) for target, f in self.files if device_files.get(target) != f.sha1]
        if self.delete_extra:
            wanted = {target for target, _ in self.files}
            items += [Item(None, name) for name in sorted(device_files)
                      if name not in wanted and not kept(name)]
        return items

    def runs_on(self, device_files):
        """Whether a device listing `device_files` runs exactly this release."""
        return not self.changes(device_files)

    def to_dict(self):
        return {"id": self.id, "name": self.name, "delete_extra": self.delete_extra,
                "created_at": self.created_at,
                "files": [{"target": target, "sha256": f.sha256, "sha1": f.sha1,
                           "size": f.size} for target, f in self.files]}


class Releases:
    """The releases in the database, with the file store that holds their bytes and the
    registry (a new or deleted release changes what devices show: Registry.touch_all)."""

    def __init__(self, store_, registry):
        self.store, self.registry = store_, registry
        self._cache = (None, [])  # (MAX(id), COUNT(*)) -> [Release], newest first

    def check(self, db, name, targets):
        """Everything about a new release that its names decide, before any file of it is
        stored; ReleaseError says why not: a name taken or against the rules, a target twice
        or against the naming rules, the safe-boot code or settings.json (never part of a
        release: a forced push replaces the safe-boot code), more files than one bundle
        carries (manifest.MAX_FILES)."""
        check_release_name(name)
        if not targets:
            raise ReleaseError("a release holds at least one file")
        try:
            for target in targets:
                check_target(target)
                if is_protected(target):
                    raise ReleaseError("%s is the safe-boot code: it is never part of a "
                                       "release (a forced push replaces it)" % target)
            check_targets(targets)
        except (BadName, BadPayload) as exc:
            raise ReleaseError(str(exc)) from None
        for target in targets:
            if target.endswith(".mpy") and target[:-4] + ".py" in board_tools.SOURCE_ONLY:
                raise ReleaseError("a board runs %s.py as source only: %s would never run"
                                   % (target[:-4], target))
        if len(targets) > MAX_FILES:
            raise ReleaseError("a release holds at most %d files (one bundle)" % MAX_FILES)
        taken = db.execute("SELECT name FROM releases WHERE name = ? COLLATE NOCASE",
                           (name,)).fetchone()  # one name in any case, as tags
        if taken:
            raise ReleaseError("there is a release named %s already: releases never change, "
                               "give the new one a new name" % taken[0])

    @staticmethod
    def check_source(target, stream):
        """A .py of a release must compile (board_tools.check_source), as a push's must, and
        a .mpy must be one (it starts with "M" and its format's version): ReleaseError says
        where it is not. `stream` (a binary file) is read only for those two, then put back
        at its start; other files are not read."""
        if not target.endswith((".py", ".mpy")):
            return
        data = stream.read()
        stream.seek(0)
        if target.endswith(".py"):
            try:
                board_tools.check_source(data, target)
            except board_tools.SourceError as exc:
                raise ReleaseError(str(exc)) from None
        elif len(data) < 4 or data[:1] != b"M":
            raise ReleaseError("%s is not a .mpy file (one starts with 'M' and its format's "
                               "version: mpy-cross makes them)" % target)

    def create(self, db, name, files, delete_extra=False):
        """A new release `name` of `files` [(target, StoredFile)]; ReleaseError says why not
        (check, check_source)."""
        self.check(db, name, [target for target, _ in files])
        for target, f in files:  # (a source checked before it was stored is not compiled again)
            with open(self.store.path(f.sha256), "rb") as source:
                self.check_source(target, source)
        now = time.time()
        with transaction(db):
            if db.execute("SELECT 1 FROM releases WHERE name = ?", (name,)).fetchone():
                raise ReleaseError("there is a release named %s already: releases never "
                                   "change, give the new one a new name" % name)
            for _, f in files:  # deleted since it was stored (another request)
                if self.store.get(db, f.sha256) is None:
                    raise ReleaseError("%s was deleted meanwhile; upload it again" % f.name)
            release_id = db.execute(
                "INSERT INTO releases (name, delete_extra, created_at) VALUES (?,?,?)",
                (name, int(delete_extra), now)).lastrowid
            db.executemany("INSERT INTO release_files (release_id, target, file_sha256)"
                           " VALUES (?,?,?)", [(release_id, t, f.sha256) for t, f in files])
            self.registry.touch_all(db)
        return self.get(db, name)

    def all(self, db):
        """Every release, newest first (kept in memory: a release never changes)."""
        key = tuple(db.execute("SELECT MAX(id), COUNT(*) FROM releases").fetchone())
        if self._cache[0] != key:
            self._cache = (key, [self._load(db, row) for row in db.execute(
                "SELECT * FROM releases ORDER BY id DESC").fetchall()])
        return self._cache[1]

    def get(self, db, ref):
        """The release named `ref` (or of id `ref`, an int), or None."""
        for release in self.all(db):
            if release.name == ref or release.id == ref:
                return release
        return None

    def delete(self, db, name):
        """Delete release `name`; ReleaseError when it is unknown or a rollout that has not
        ended takes it. Its files stay in the file store."""
        release = self.get(db, name)
        if release is None:
            raise ReleaseError("no release named %s" % name)
        busy = db.execute("SELECT id FROM rollouts WHERE release_id = ? AND finished_at IS NULL",
                          (release.id,)).fetchone()
        if busy:
            raise ReleaseError("rollout %d takes %s; cancel it first" % (busy[0], name))
        used = db.execute("SELECT COUNT(*) FROM rollouts WHERE release_id = ?",
                          (release.id,)).fetchone()[0]
        if used:
            raise ReleaseError("%d rollout(s) took %s: their history names it, so it stays"
                               % (used, name))
        with transaction(db):
            db.execute("DELETE FROM release_files WHERE release_id = ?", (release.id,))
            db.execute("DELETE FROM releases WHERE id = ?", (release.id,))
            self.registry.touch_all(db)
        return release

    def running(self, db, device_files):
        """The name of the release a device listing `device_files` runs (of those it runs,
        the one with the most files, then the newest), "modified" when it runs none of them,
        None when there are no releases."""
        return self.matcher(db)(device_files)

    def matcher(self, db):
        """running() for many devices: a function of a device's files, the releases read
        once."""
        releases = self.all(db)

        def running(device_files):
            if not releases:
                return None
            # the one it runs most of: a release whose files are a part of another's would
            # match a device on the larger one too (ties: the newest)
            best = None
            for release in releases:  # newest first
                if release.runs_on(device_files) and (
                        best is None or len(release.files) > len(best.files)):
                    best = release
            return best.name if best else "modified"
        return running

    def _load(self, db, row):
        files = []
        for target, sha256 in db.execute("SELECT target, file_sha256 FROM release_files WHERE"
                                         " release_id = ? ORDER BY target", (row["id"],)):
            files.append((target, self.store.get(db, sha256, deleted=True)))
        return Release(row["id"], row["name"], bool(row["delete_extra"]), row["created_at"],
                       tuple(files))
