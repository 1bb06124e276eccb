"""Picking devices: by name, by tag, every online device, and of those only the ones that do
not have a file set already. Every place that picks devices (the push form, the API, the CLI,
rollouts) goes through pick()."""
from dataclasses import dataclass, field

from .names import check_device_name


class NoDevices(ValueError):
    """The pick matched no device; the message says what was asked."""


class AllUpToDate(NoDevices):
    """Every device picked is as the push would leave it (only_needing): nothing to do."""


@dataclass(frozen=True)
class Pick:
    """devices: names; tags: any device carrying one of them; all_online: every device online
    now; only_needing: drop the devices whose heartbeat lists every file of the set already
    (with the same SHA-1)."""

    devices: tuple = ()
    tags: tuple = ()
    all_online: bool = False
    only_needing: bool = False
    wants: dict = field(default_factory=dict)  # has_all's, for only_needing

    def __bool__(self):
        return bool(self.devices or self.tags or self.all_online)


def has_all(device, wants):
    """Whether `device` (devices.Device) is as `wants` says: {target: sha1} listed with that
    SHA-1, {target: None} not listed (a delete)."""
    return all(device.files.get(target) == sha1 if sha1 else target not in device.files
               for target, sha1 in wants.items())


def wants_of(store, db, refs, name=None, deletes=()):
    """{target: sha1, deleted target: None} of a push of the stored files `refs` (under
    `name` for one) and `deletes`, for Pick.only_needing; None when a ref matches no stored
    file (the push is refused for that, not the devices)."""
    found = [store.find(db, ref) for ref in refs]
    if None in found:
        return None
    wants = {name or f.name: f.sha1 for f in found}
    wants.update({target: None for target in deletes})
    return wants


def pick(db, registry, how):
    """The device names `how` (a Pick) selects, in order: named ones first as given, then the
    tagged and online ones by name. BadName for a name against the rules; NoDevices when
    nothing is left (the message says whether all had the files already)."""
    if not how:
        raise NoDevices("no devices picked: name devices or tags, or pick every online device")
    names = [check_device_name(n) for n in how.devices]
    every = {d.name: d for d in registry.all(db)} if (
        how.all_online or how.only_needing or how.tags) else {}
    names += registry.tagged(db, how.tags)
    if how.all_online:
        names += [n for n, d in every.items() if d.online]
    names = list(dict.fromkeys(names))
    if not names:
        raise NoDevices("no device matches: %s" % _asked(how))
    if how.only_needing and how.wants is not None:
        needing = [n for n in names if n not in every or not has_all(every[n], how.wants)]
        if not needing:
            raise AllUpToDate("every device picked (%d) is as this push would leave it "
                            "already" % len(names))
        names = needing
    return names


def _asked(how):
    parts = []
    if how.devices:
        parts.append("devices %s" % ", ".join(how.devices))
    if how.tags:
        parts.append("tags %s" % ", ".join(how.tags))
    if how.all_online:
        parts.append("every online device")
    return "; ".join(parts)
