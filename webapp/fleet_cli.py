"""The `ota` commands for fleets: tags (tag, untag), releases (release create/list/delete)
and rollouts (rollout start/list/show/pause/resume/cancel). They write the database; the
server runs the rollouts. Registered on cli.ota at import (create_app imports this)."""
import json
import os

import click
from flask import current_app
from flask.cli import with_appcontext

from . import extension
from .cli import EXIT_SETUP, _die, ota
from .db import get_db
from .devices import UnknownDevice
from .filestore import FileTooLarge, NoSpace
from .fleet_api import release_dicts
from .names import BadName, check_target
from .releases import ReleaseError, left_out
from .rollout.service import RolloutRejected
from .rollout.store import Settings
from .schemas import SQLITE_MAX
from .targets import NoDevices, Pick, pick


def _count(n, thing):
    """"1 file", "2 files"."""
    return "%d %s%s" % (n, thing, "" if n == 1 else "s")


def _retag(name, change):
    registry = extension.of().registry
    db = get_db()
    device = registry.get(db, name)
    if device is None:
        _die(EXIT_SETUP, "no device named %r has sent a heartbeat" % name)
    try:
        tags = registry.set_tags(db, name, change(set(device.tags)))
    except (UnknownDevice, ValueError) as exc:
        _die(EXIT_SETUP, "cannot tag %s: %s" % (name, exc))
    click.echo("%s: %s" % (name, ", ".join(tags) or "no tags"))


@ota.command("tag")
@click.argument("name")
@click.argument("tags", nargs=-1, required=True)
@with_appcontext
def tag_command(name, tags):
    """Give device NAME these tags (a room, a kind, anything): pushes and rollouts can pick
    devices by tag."""
    _retag(name, lambda have: sorted(have | set(tags)))


@ota.command("untag")
@click.argument("name")
@click.argument("tags", nargs=-1, required=True)
@with_appcontext
def untag_command(name, tags):
    """Take these tags off device NAME."""
    def change(have):
        missing = sorted({t.lower() for t in tags} - have)
        if missing:
            _die(EXIT_SETUP, "%s has no tag %s: it has %s" % (
                name, ", ".join(missing), ", ".join(sorted(have)) or "none"))
        return sorted(have - {t.lower() for t in tags})
    _retag(name, change)


# -- releases and rollouts ---------------------------------------------------------------------

@ota.group("release")
def release_group():
    """Releases: named, immutable sets of files under their names on the device."""


@release_group.command("create")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--delete-extra", is_flag=True, help="A device converging to it also deletes "
              "the files it does not hold (never settings.json, the safe-boot code or the "
              "runtime).")
@with_appcontext
def release_create_command(name, folder, delete_extra):
    """Make release NAME of the files in FOLDER (one sub-folder level at most), each under its
    path in FOLDER. Hidden files and __pycache__ are left out."""
    ext, db = extension.of(), get_db()
    paths = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not left_out(d))
        paths += [os.path.relpath(os.path.join(root, f), folder) for f in sorted(files)
                  if not left_out(f)]
    try:
        targets = [check_target(p.replace(os.sep, "/")) for p in paths]  # FOLDER is the root
        # all that can be checked before a byte is stored: a refused release stores nothing
        ext.releases.check(db, name, targets)
        for p, t in zip(paths, targets):
            with open(os.path.join(folder, p), "rb") as f:
                ext.releases.check_source(t, f)
        opened = [open(os.path.join(folder, p), "rb") for p in paths]
        try:
            stored = ext.store.save_all(db, [(f, t.rpartition("/")[2])
                                             for f, t in zip(opened, targets)])
        finally:
            for f in opened:
                f.close()
        made = ext.releases.create(db, name, list(zip(targets, stored)), delete_extra)
    except (BadName, ReleaseError, FileTooLarge, NoSpace) as exc:
        _die(EXIT_SETUP, "no release was made: %s" % exc)
    click.echo("release %s: %s%s" % (made.name, ", ".join(t for t, _ in made.files),
                                     " (deletes what it does not hold)" if delete_extra else ""))


@release_group.command("list")
@with_appcontext
def release_list_command():
    """The releases, newest first, with how many devices run each."""
    found = release_dicts(get_db())
    if not found:
        click.echo("no releases yet: ota release create NAME FOLDER")
    for r in found:
        click.echo("%-24s %s  %s run%s it%s" % (
            r["name"], _count(len(r["files"]), "file"), _count(r["devices"], "device"),
            "s" if r["devices"] == 1 else "",
            "  (deletes extra files)" if r["delete_extra"] else ""))


@release_group.command("delete")
@click.argument("name")
@with_appcontext
def release_delete_command(name):
    """Delete release NAME (not one a rollout took); its files stay stored."""
    try:
        extension.of().releases.delete(get_db(), name)
    except ReleaseError as exc:
        _die(EXIT_SETUP, "cannot delete %s: %s" % (name, exc))
    click.echo("deleted release %s" % name)


@ota.group("rollout")
def rollout_group():
    """Rollouts: a release taken to many devices in waves; the server runs them."""


@rollout_group.command("start")
@click.argument("release")
@click.option("--device", "-d", "devices", multiple=True, help="A device (repeat for more).")
@click.option("--tag", "-t", "tags", multiple=True, help="Every device with this tag (repeat).")
@click.option("--all-online", is_flag=True, help="Every device online now.")
@click.option("--canary", type=click.IntRange(0, 100), default=1, show_default=True,
              help="Devices in the first wave, which must come back healthy.")
@click.option("--wave-size", type=click.IntRange(1, 5000), default=10, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Pushes at once, at most.")
@click.option("--threshold", type=click.FloatRange(0, 100), default=20, show_default=True,
              help="Stop when more than this percentage of the devices decided failed.")
@click.option("--auto", "auto_continue", is_flag=True,
              help="Go on after a healthy canary without waiting for `ota rollout resume`.")
@click.option("--offline-wait", type=click.FloatRange(0, 30 * 24 * 3600), default=None,
              help="Seconds a device offline at its turn is waited for (default: "
                   "OTA_OFFLINE_WAIT).")
@with_appcontext
def rollout_start_command(release, devices, tags, all_online, canary, wave_size, concurrency,
                          threshold, auto_continue, offline_wait):
    """Roll RELEASE out to the devices picked. The server runs it: follow it on its page or
    with `ota rollout show ID`."""
    ext, db = extension.of(), get_db()
    try:
        names = pick(db, ext.registry, Pick(devices, tags, all_online))
        settings = Settings(canary, wave_size, concurrency, threshold / 100.0, auto_continue,
                            current_app.config["OTA_OFFLINE_WAIT"] if offline_wait is None
                            else offline_wait)
        rollout_id = ext.rollouts.create(db, release, names, settings)
    except (BadName, NoDevices, RolloutRejected) as exc:
        _die(EXIT_SETUP, "no rollout was made: %s" % exc)
    shown = ext.rollouts.describe(db, rollout_id)
    click.echo("rollout %d of %s: %s (%d run it already)%s" % (
        rollout_id, release, _count(shown["total"], "device"), shown["counts"]["skipped"],
        "; after the canary: ota rollout resume %d" % rollout_id
        if canary and not auto_continue else ""))


@rollout_group.command("list")
@with_appcontext
def rollout_list_command():
    """The newest rollouts."""
    found = extension.of().rollouts.listing(get_db())
    if not found:
        click.echo("no rollouts yet: ota rollout start RELEASE --tag TAG")
    for r in found:
        click.echo("%4d  %-20s %-10s %d/%d finished, %d failed%s" % (
            r["id"], r["release"], r["state"], r["finished"], r["total"], r["counts"]["failed"],
            "  (%s)" % r["reason"] if r["reason"] else ""))


@rollout_group.command("show")
@click.argument("rollout_id", type=click.IntRange(1, SQLITE_MAX))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def rollout_show_command(rollout_id, as_json):
    """A rollout's waves and each device's state."""
    shown = extension.of().rollouts.describe(get_db(), rollout_id)
    if shown is None:
        _die(EXIT_SETUP, "no rollout %d" % rollout_id)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    click.echo("rollout %d of %s: %s%s; %d/%d finished; failure share %.0f %% (threshold "
               "%.0f %%)" % (shown["id"], shown["release"], shown["state"],
                             " (%s)" % shown["reason"] if shown["reason"] else "",
                             shown["finished"], shown["total"], 100 * shown["failure_share"],
                             100 * shown["settings"]["threshold"]))
    for d in shown["devices"]:
        canary = shown["settings"]["canary"]  # waves as the page names them
        wave = "-" if d["wave"] is None else "canary" if d["wave"] == 0 and canary else \
            str(d["wave"] if canary else d["wave"] + 1)
        click.echo("  %-7s %-20s %-10s %s" % (wave, d["device"], d["state"], d["detail"] or ""))


def _steer(rollout_id, action, said):
    try:
        getattr(extension.of().rollouts, action)(get_db(), rollout_id)
    except (LookupError, RolloutRejected) as exc:
        _die(EXIT_SETUP, "cannot %s rollout %d: %s" % (action, rollout_id, str(exc).strip("'")))
    click.echo("rollout %d %s" % (rollout_id, said))


@rollout_group.command("pause")
@click.argument("rollout_id", type=click.IntRange(1, SQLITE_MAX))
@with_appcontext
def rollout_pause_command(rollout_id):
    """Start no more pushes (those going finish)."""
    _steer(rollout_id, "pause", "paused: pushes going finish, no new ones start")


@rollout_group.command("resume")
@click.argument("rollout_id", type=click.IntRange(1, SQLITE_MAX))
@with_appcontext
def rollout_resume_command(rollout_id):
    """Go on with a paused or stopped rollout, or past its healthy canary."""
    _steer(rollout_id, "resume", "goes on")


@rollout_group.command("cancel")
@click.argument("rollout_id", type=click.IntRange(1, SQLITE_MAX))
@with_appcontext
def rollout_cancel_command(rollout_id):
    """End a rollout: devices not pushed yet are left as they are."""
    _steer(rollout_id, "cancel", "cancelled")
