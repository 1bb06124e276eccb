"""`flask --app wsgi ota ...`: push a file and list devices from a shell.

The CLI runs its own MQTT client and transfer socket (as the seed's sender did), so it works
whether or not the server is running; the server's embedded broker, or MQTT_BROKER_URL, must be up.
"""
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from . import board_tools, extension, keys
from .db import get_db
from .filestore import FileTooLarge, NoSpace
from .names import BadName, check_device_name
from .push import store
from .push.service import PushRejected
from .push.states import DELIVERED, FINAL, State
from .services import start_services, stop_services

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_UNCONFIRMED = 0, 1, 2, 3


def _quiet_logs(verbose):
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)


def _die(code, message):
    click.echo(message, err=True)
    sys.exit(code)


def _connect(app):
    services = start_services(app, role="cli")
    if not services.bus.wait_connected(5):
        stop_services(app)
        _die(EXIT_SETUP, "cannot reach the MQTT broker at %s: start the server (make run) or set "
                         "MQTT_BROKER_URL" % services.bus.where())
    # Retained heartbeats arrive right after subscribing; let them land before deciding anything.
    services.bus.sync(5)
    return services


@click.group("ota")
def ota():
    """Push files to devices and list the devices."""


def _update_options(force_help):
    """The options of every command that makes an update on a device (push, rm)."""
    options = [
        click.option("--device", "-d", required=True,
                     help="The device id (first level of its topics)."),
        click.option("--force", is_flag=True, help=force_help),
        click.option("--wait", is_flag=True, help="Wait until the device confirms the update "
                                                  "(it runs the new files); exit 0 only then."),
        click.option("--timeout", type=float, help="Give up after this many seconds."),
        click.option("--verbose", "-v", is_flag=True, help="Show the service logs too."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@ota.command("push")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "target", help="The file's name on the device (one file only; default: "
                                     "its own name).")
@click.option("--mpy", is_flag=True, help="Send each .py (but boot.py, main.py) as NAME.mpy, "
                                          "precompiled with mpy-cross for the device's format.")
@_update_options("Allow replacing the safe-boot code (boot.py, safeboot.py, probation.py, "
                 "journal.py): I know.")
@with_appcontext
def push_command(files, device, target, mpy, force, wait, timeout, verbose):
    """Push FILES to a device; several files go as one update (all or none).

    Exit codes: 0 sent (confirmed, with --wait), 1 the push failed, 2 a setup or usage error,
    3 delivered to a device that sends no confirmation (the seed's firmware).
    """
    _quiet_logs(verbose)
    app = current_app._get_current_object()
    if target and len(files) > 1:
        _die(EXIT_SETUP, "cannot push: --as names one file, and %d were given" % len(files))
    db = get_db()
    opened = [open(path, "rb") for path in files]
    try:
        stored = extension.of(app).store.save_all(
            db, [(f, os.path.basename(p)) for f, p in zip(opened, files)])
    except (FileTooLarge, BadName, NoSpace, sqlite3.OperationalError) as exc:
        _die(EXIT_SETUP, "cannot push: %s" % exc)  # (a full disk: nothing was stored)
    finally:
        for f in opened:
            f.close()
    services = _connect(app)
    try:
        push_id = services.pushes.create(db, device, stored, target, force, mpy=mpy)
    except PushRejected as exc:
        stop_services(app)
        _die(EXIT_SETUP, "cannot push: %s" % exc)
    click.echo("push %d: %s to %s" % (push_id, ", ".join(
        "%s (%d bytes, sha1 %s)%s" % (os.path.basename(p), s.size, s.sha1[:12],
                                      " as %s" % target if target else "")
        for p, s in zip(files, stored)), device))
    for s in stored if mpy else ():
        compiled = services.pushes.compiled_size(s)
        name = target or s.name
        if name.endswith(".py") and name not in board_tools.SOURCE_ONLY and compiled:
            click.echo("  %s precompiled as %s.mpy: %d bytes, %d saved" % (
                name, name[:-3], compiled, s.size - compiled))
    _outcome(app, db, services, push_id, wait, timeout)


@ota.command("rm")
@click.argument("names", nargs=-1, required=True)
@_update_options("Allow deleting the safe-boot code or the runtime (main.py, loader.py, "
                 "...): I know.")
@with_appcontext
def rm_command(names, device, force, wait, timeout, verbose):
    """Delete NAMES (as the device lists them) on a device, as one journaled update: a
    rollback restores them. Exit codes as for `ota push`."""
    _quiet_logs(verbose)
    app = current_app._get_current_object()
    db = get_db()
    services = _connect(app)
    try:
        push_id = services.pushes.create(db, device, [], None, force, list(names))
    except PushRejected as exc:
        stop_services(app)
        _die(EXIT_SETUP, "cannot delete: %s" % exc)
    click.echo("push %d: delete %s on %s" % (push_id, ", ".join(names), device))
    _outcome(app, db, services, push_id, wait, timeout)


def _outcome(app, db, services, push_id, wait, timeout):
    """Follow a push to its end (for us), stop the services and exit with its code."""
    try:
        state, reason, detail = _follow(db, services, push_id, wait, timeout)
    finally:
        stop_services(app)
    if state == State.DONE:
        click.echo("done: %s" % detail)
        sys.exit(EXIT_OK)
    if state == State.SENT:
        click.echo("sent; not waiting for the device's confirmation (use --wait)")
        sys.exit(EXIT_OK)
    if state == State.UNCONFIRMED:
        click.echo("delivered, unconfirmed: %s" % detail, err=True)
        sys.exit(EXIT_UNCONFIRMED)
    _die(EXIT_FAILED, "push failed: %s" % ("%s: %s" % (reason, detail) if detail else reason))


def _follow(db, services, push_id, wait, timeout):
    """Print each step as it happens; return (state, reason, detail) when it is over for us."""
    start = store.head(db, push_id)["created_at"]
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = 0
    while True:
        for shown, at, label, _kind, detail in store.events_after(db, push_id, shown):
            click.echo("  %7.3fs  %-13s %s" % (at - start, label, detail or ""))
        row = store.head(db, push_id)
        if row["state"] in FINAL:
            return row["state"], row["reason"], row["detail"]
        if row["state"] in DELIVERED and not wait:
            services.pushes.detach(push_id)
            services.pushes.wait(push_id, 5)
            return State.SENT, None, None
        if deadline is not None and time.monotonic() > deadline:
            services.pushes.cancel(push_id, "timeout", "gave up after %gs (--timeout)" % timeout)
            services.pushes.wait(push_id, 5)
            continue
        services.pushes.wait(push_id, 0.05)


@ota.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def devices_command(as_json):
    """List the devices the server has heard from."""
    _quiet_logs(False)
    app = current_app._get_current_object()
    ext = extension.of(app)
    services = start_services(app, role="cli")
    fresh = services.bus.wait_connected(3) and services.bus.sync(3)
    stop_services(app)
    devices = ext.registry.all(get_db())
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in devices], indent=2))
        return
    if not fresh:
        click.echo("(broker unreachable: showing what was last recorded)", err=True)
    if not devices:
        click.echo("no devices yet: a device appears with its first heartbeat")
        return
    click.echo("%-20s %-8s %9s %6s %-8s %s" % ("DEVICE", "STATE", "LAST SEEN", "BOOT", "FW", "FILES"))
    now = time.time()
    for d in devices:
        click.echo("%-20s %-8s %8ds %6s %-8s %d" % (
            d.name, "online" if d.online else "offline", now - d.last_seen,
            d.boot if d.boot is not None else "-", d.fw or "-", len(d.files)))


@ota.command("device-add")
@click.argument("name")
@click.option("--rotate", is_flag=True, help="Replace the key it has (the board needs the new "
                                             "settings before it takes triggers again).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the settings.json here instead of printing it.")
@with_appcontext
def device_add_command(name, rotate, output):
    """Make a device's secret key and print the settings.json to put on the board."""
    app = current_app._get_current_object()
    try:
        keys.device_broker(app)  # before the key is made: no settings.json a device cannot use
        key = keys.add(get_db(), check_device_name(name), rotate=rotate)
    except (BadName, keys.KeyExists, keys.BrokerUnusable) as exc:
        _die(EXIT_SETUP, "cannot add %s: %s" % (name, exc))
    text = json.dumps(keys.settings(app, name, key), indent=2) + "\n"
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        click.echo("wrote %s: fill in the Wi-Fi, then copy it to the board" % output)
    else:
        click.echo(text, nl=False)


@ota.command("precompile")
@click.argument("out_dir", type=click.Path(file_okay=False))
def precompile_command(out_dir):
    """Write the runtime for a board short of RAM (an ESP8266) into OUT_DIR: boot.py and
    main.py as source, every other module precompiled to .mpy with mpy-cross. Copy the
    folder's files onto the board, with its settings.json."""
    try:
        written = board_tools.board_image(board_tools.board_files(), out_dir)
    except board_tools.MpyCrossMissing as exc:
        _die(EXIT_SETUP, "cannot precompile: %s" % exc)
    except (OSError, subprocess.CalledProcessError) as exc:
        _die(EXIT_FAILED, "cannot precompile: %s" % (exc.stderr.decode(errors="replace").strip()
                                                   if getattr(exc, "stderr", None) else exc))
    for path in written:
        click.echo(path)
