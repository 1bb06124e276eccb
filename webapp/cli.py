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
from flask.cli import ScriptInfo, with_appcontext

from . import backup, board_tools, extension, keys
from .db import get_db
from .devices import NotForgettable
from .filestore import FileTooLarge, NoSpace
from .manifest import Item
from .names import BadName, check_device_name, is_device_name
from .push import store
from .push.service import PushRejected
from .push.states import DELIVERED, FINAL, State
from .services import start_services, stop_services
from .targets import AllUpToDate, NoDevices, Pick, pick

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_UNCONFIRMED = 0, 1, 2, 3
GAVE_UP = "gave up"  # --timeout ran out after the device had the update


def _quiet_logs(verbose):
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    # the command prints each step itself, and a broken message of some device on the broker
    # is the server's to log: both only with --verbose
    for name in ("webapp.push", "webapp.services"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)


def _die(code, message):
    click.echo(message, err=True)
    sys.exit(code)


def _connect(app, devices):
    services = start_services(app, role="cli")
    if not services.bus.wait_connected(5):
        stop_services(app)
        _die(EXIT_SETUP, "cannot reach the MQTT broker at %s: start the server (make run) or set "
                         "MQTT_BROKER_URL" % services.bus.where())
    for device in devices:
        if is_device_name(device):  # (a bad name is the push's to refuse)
            services.bus.follow(device)  # its retained heartbeat: brokers that send none to +/status
    # Retained heartbeats arrive right after subscribing; let them land before deciding anything.
    services.bus.sync(5)
    return services


@click.group("ota")
def ota():
    """Push files to devices and list the devices."""
    _quiet_logs(False)  # the server's log lines are not a command's output (push -v: its own)


def main():
    """The `ota` command (an installed package's script): `flask --app webapp.wsgi ota`
    without the flask part; the app is made as the server makes it (its settings from the
    environment and the data folder)."""
    from . import create_app
    from .config import ConfigError
    try:
        app = create_app()
    except ConfigError as exc:  # a bad setting: one line naming it, as the server says it
        _die(EXIT_SETUP, "ota: %s" % exc)
    ota.main(prog_name="ota", obj=ScriptInfo(create_app=lambda: app))


def _update_options(force_help):
    """The options of every command that makes an update on a device (push, rm)."""
    options = [
        click.option("--device", "-d", "devices", multiple=True,
                     help="The device id (first level of its topics); repeat for more."),
        click.option("--tag", "-t", "tags", multiple=True,
                     help="Every device with this tag (repeat for more)."),
        click.option("--all-online", is_flag=True, help="Every device online now."),
        click.option("--force", is_flag=True, help=force_help),
        click.option("--wait", is_flag=True, help="Wait until the device confirms the update "
                                                  "(it runs the new files); exit 0 only then."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
                     help="Give up after this many seconds (more than 0)."),
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
@click.option("--only-needing", is_flag=True, help="Leave out the devices that list these "
              "files (same name, same SHA-1) already.")
@_update_options("Allow replacing the safe-boot code (boot.py, safeboot.py, probation.py, "
                 "journal.py): I know.")
@with_appcontext
def push_command(files, devices, tags, all_online, target, mpy, only_needing, force, wait,
                 timeout, verbose):
    """Push FILES to the devices picked (-d, --tag, --all-online); several files go as one
    update (all or none). For many devices, a release and `ota rollout` go in waves.

    Exit codes: 0 sent (confirmed, with --wait), 1 a push failed, 2 a setup or usage error,
    3 delivered to a device that sends no confirmation (the seed's firmware); with several
    devices, the worst of them.
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
    # each under the name given here: the same bytes stored before keep their first name
    items = [Item(s, target or os.path.basename(p)) for p, s in zip(files, stored)]
    how = Pick(devices, tags, all_online, only_needing, {i.target: i.file.sha1 for i in items})
    services = _connect(app, devices)
    try:
        devices = pick(db, extension.of(app).registry, how)
        push_ids = services.pushes.create_many(db, devices, items, None, force, mpy=mpy)
    except AllUpToDate as exc:  # --only-needing and nothing needs it: done, not an error
        stop_services(app)
        click.echo("nothing to push: %s" % exc)
        sys.exit(EXIT_OK)
    except (PushRejected, BadName, NoDevices) as exc:
        stop_services(app)
        _die(EXIT_SETUP, "cannot push: %s" % exc)
    said = ", ".join("%s (%d bytes, sha1 %s)%s" % (os.path.basename(p), s.size, s.sha1[:12],
                                                    " as %s" % target if target else "")
                     for p, s in zip(files, stored))
    for push_id, device in zip(push_ids, devices):
        click.echo("push %d: %s to %s" % (push_id, said, device))
    for s, name in ((i.file, i.target) for i in items) if mpy else ():
        compiled = services.pushes.planner.compiled_size(s)
        if name.endswith(".py") and name not in board_tools.SOURCE_ONLY and compiled:
            click.echo("  %s precompiled as %s.mpy: %d bytes, %d %s" % (
                name, name[:-3], compiled, abs(s.size - compiled),
                "saved" if compiled <= s.size else "more (a tiny module's header)"))
    _outcome(app, db, services, push_ids, wait, timeout)


@ota.command("rm")
@click.argument("names", nargs=-1, required=True)
@_update_options("Allow deleting the safe-boot code or the runtime (main.py, loader.py, "
                 "...): I know.")
@with_appcontext
def rm_command(names, devices, tags, all_online, force, wait, timeout, verbose):
    """Delete NAMES (as the device lists them) on the devices picked, as one journaled update
    each: a rollback restores them. Exit codes as for `ota push`."""
    _quiet_logs(verbose)
    app = current_app._get_current_object()
    db = get_db()
    services = _connect(app, devices)
    try:
        devices = pick(db, extension.of(app).registry, Pick(devices, tags, all_online))
        push_ids = services.pushes.create_many(db, devices, [], None, force, list(names))
    except (PushRejected, BadName, NoDevices) as exc:
        stop_services(app)
        _die(EXIT_SETUP, "cannot delete: %s" % exc)
    for push_id, device in zip(push_ids, devices):
        click.echo("push %d: delete %s on %s" % (push_id, ", ".join(names), device))
    _outcome(app, db, services, push_ids, wait, timeout)


# the exit code of a run of several pushes is its worst: failed, then unconfirmed, then ok
_WORST = {EXIT_OK: 0, EXIT_UNCONFIRMED: 1, EXIT_FAILED: 2}


def _outcome(app, db, services, push_ids, wait, timeout):
    """Follow the pushes to their end (for us), one after the other (they run at once), stop
    the services and exit with the worst code."""
    deadline = None if timeout is None else time.monotonic() + timeout
    codes = []
    try:
        for push_id in push_ids:
            if len(push_ids) > 1:
                click.echo("push %d to %s:" % (push_id, store.head(db, push_id)["device"]))
            codes.append(_said(*_follow(db, services, push_id, wait, timeout, deadline)))
    finally:
        stop_services(app)
    sys.exit(max(codes, key=_WORST.get))


def _said(state, reason, detail):
    """Print a push's outcome; its exit code."""
    if state == State.DONE:
        click.echo("done: %s" % detail)
        return EXIT_OK
    if state == State.SENT:
        click.echo("sent; not waiting for the device's confirmation (use --wait; a running "
                   "server records it)")
        return EXIT_OK
    if state == GAVE_UP:
        click.echo("delivered, unconfirmed: %s; the device has the whole update and confirms "
                   "or rolls it back by itself (a running server records which)" % detail,
                   err=True)
        return EXIT_UNCONFIRMED
    if state == State.UNCONFIRMED:
        click.echo("delivered, unconfirmed: %s" % detail, err=True)
        return EXIT_UNCONFIRMED
    click.echo("push failed: %s" % ("%s: %s" % (reason, detail) if detail else reason),
               err=True)
    return EXIT_FAILED


def _follow(db, services, push_id, wait, timeout, deadline):
    """Print each step as it happens; return (state, reason, detail) when it is over for us
    (`deadline`: time.monotonic() when --timeout `timeout` runs out, or None)."""
    start = store.head(db, push_id)["created_at"]
    shown = 0
    while True:
        for shown, at, label, _kind, detail in store.events_after(db, push_id, shown):
            click.echo("  %7.3fs  %-13s %s" % (at - start, label, detail or ""))
        row = store.head(db, push_id)
        if row["state"] in FINAL:
            return row["state"], row["reason"], row["detail"]
        if row["state"] in DELIVERED and not wait:
            return State.SENT, None, None  # stop_services leaves it to a running server
        if deadline is not None and time.monotonic() > deadline:
            try:
                services.pushes.cancel(push_id, "timeout", "gave up after %gs (--timeout)"
                                       % timeout)
            except PushRejected:  # delivered meanwhile: the device decides, not us
                return GAVE_UP, None, "gave up waiting after %gs (--timeout)" % timeout
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
    running = ext.releases.matcher(get_db())
    if as_json:
        click.echo(json.dumps([dict(d.to_dict(), release=running(d.files)) for d in devices],
                              indent=2))
        return
    if not fresh:
        click.echo("(broker unreachable: showing what was last recorded)", err=True)
    if not devices:
        click.echo("no devices yet: a device appears with its first heartbeat")
        return
    rows = [(d.name, "online" if d.online else "offline", "%ds" % (time.time() - d.last_seen),
             str(d.boot) if d.boot is not None else "-", d.fw or "-", str(len(d.files)),
             d.runs or "-", running(d.files) or "-", ",".join(d.tags) or "-") for d in devices]
    head = ("DEVICE", "STATE", "LAST SEEN", "BOOT", "FW", "FILES", "MICROPYTHON", "RELEASE",
            "TAGS")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:  # columns as wide as their longest cell; the tags last
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])


@ota.command("device-add")
@click.argument("name")
@click.option("--rotate", is_flag=True, help="Replace the key it has (the board needs the new "
                                             "settings before it takes triggers again).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the settings.json here instead of printing it.")
@click.option("--wifi-ssid", default="", help="The Wi-Fi the board joins (only in the output).")
@click.option("--wifi-password", default="", help="Its password (only in the output; never "
                                                  "stored on the server).")
@with_appcontext
def device_add_command(name, rotate, output, wifi_ssid, wifi_password):
    """Make a device's secret key and print the settings.json to put on the board."""
    app = current_app._get_current_object()
    try:
        wifi = keys.wifi(wifi_ssid, wifi_password)
        keys.device_broker(app)  # before the key is made: no settings.json a device cannot use
        key = keys.add(get_db(), check_device_name(name), rotate=rotate)
    except (BadName, keys.BadWifi, keys.KeyExists, keys.BrokerUnusable) as exc:
        _die(EXIT_SETUP, "cannot add %s: %s" % (name, exc))
    settings = dict(keys.settings(app, name, key), **wifi)
    text = json.dumps(settings, indent=2) + "\n"
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        click.echo("wrote %s: %scopy it to the board" % (output, "" if wifi_ssid else
                                                          "fill in the Wi-Fi, then "))
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


@ota.command("backup")
@click.argument("archive", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(archive):
    """Write ARCHIVE (.tar.gz): a consistent copy of the database (SQLite's online backup,
    safe while the server runs) and every stored file."""
    try:
        manifest = backup.write_backup(current_app.config, archive)
    except backup.BackupError as exc:
        _die(EXIT_FAILED, "backup failed: %s" % exc)
    click.echo("wrote %s: the database (schema %d) and %d files"
               % (archive, manifest["schema"], manifest["files"]))


@ota.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a database that already holds devices, "
                                            "files or pushes.")
@with_appcontext
def restore_command(archive, force):
    """Put ARCHIVE (from `ota backup`) back: the database and the files. Stop the server
    first; it finds everything at its next start."""
    try:
        manifest = backup.restore_backup(current_app.config, archive, force)
    except backup.BackupError as exc:
        _die(EXIT_SETUP if "--force" in str(exc) else EXIT_FAILED, "restore failed: %s" % exc)
    click.echo("restored %s: the database and %d files, from %s" % (
        archive, manifest["files"], time.strftime("%Y-%m-%d %H:%M",
                                                  time.localtime(manifest["created_at"]))))


@ota.command("flash")
@click.argument("name")
@click.option("--port", "-p", "serial_port", required=True,
              help="The board's USB serial port (/dev/ttyUSB0, /dev/ttyACM0, COM3).")
@click.option("--wifi-ssid", help="The Wi-Fi the board joins (asked for on a terminal).")
@click.option("--wifi-password", help="Its password (asked for on a terminal; never stored on "
                                      "the server).")
@click.option("--mqtt-user", default="", help="The board's broker user (mosquitto with a user "
                                              "per device: README).")
@click.option("--mqtt-password", default="", help="Its broker password.")
@click.option("--precompiled/--source", default=None,
              help="Copy the runtime precompiled (.mpy) or as source; default: precompiled "
                   "when the board's heap is under 128 KB (an ESP8266).")
@with_appcontext
def flash_command(name, serial_port, wifi_ssid, wifi_password, mqtt_user, mqtt_password,
                  precompiled):
    """Put the runtime on a board over USB: NAME's key (made now, or the one it has) and
    settings, the runtime files, then a reset. From then on every update goes over the air;
    the board appears with its first heartbeat. Needs mpremote (pip install mpremote).
    Run it with the server's settings (its environment): the board is given the broker they
    name."""
    app = current_app._get_current_object()
    db = get_db()
    if wifi_ssid is None:
        if not sys.stdin.isatty():
            _die(EXIT_SETUP, "cannot flash %s: give --wifi-ssid and --wifi-password (there is "
                             "no terminal to ask on)" % name)
        wifi_ssid = click.prompt("Wi-Fi network (SSID)")
        wifi_password = click.prompt("Wi-Fi password", hide_input=True, default="",
                                     show_default=False)
    try:
        check_device_name(name)
        wifi = keys.wifi(wifi_ssid, wifi_password)
        keys.device_broker(app)  # before the key is made: no settings.json it cannot use
        info = board_tools.board_info(serial_port)  # a board that answers, before any key
        board_tools.check_supported(info)
    except (BadName, keys.BadWifi, keys.BrokerUnusable, board_tools.BoardError) as exc:
        _die(EXIT_SETUP if not isinstance(exc, board_tools.BoardError) else EXIT_FAILED,
             "cannot flash %s: %s" % (name, exc))
    key = keys.get(db, name) or keys.add(db, name)
    settings = dict(keys.settings(app, name, key), user=mqtt_user, password=mqtt_password,
                    **wifi)
    try:
        info, compiled, names = board_tools.flash_runtime(serial_port, settings, precompiled,
                                                          info)
    except (board_tools.BoardError, board_tools.MpyCrossMissing) as exc:
        _die(EXIT_FAILED, "cannot flash %s: %s" % (name, exc))
    except subprocess.CalledProcessError as exc:
        _die(EXIT_FAILED, "cannot flash %s: mpy-cross: %s" % (
            name, exc.stderr.decode(errors="replace").strip() if exc.stderr else exc))
    click.echo("%s: MicroPython %s (%s, mpy %d.%d, %d KB heap): copied %d runtime files (%s) "
               "and its settings; reset. It appears with its first heartbeat." % (
                   name, ".".join(map(str, info["version"])), info["platform"], info["mpy"],
                   info["mpy_sub"], info["heap"] // 1024, len(names) - 1,
                   "precompiled" if compiled else "source"))

@ota.command("forget")
@click.argument("name")
@with_appcontext
def forget_command(name):
    """Forget an offline device: its record and its key go, its push history stays. A
    heartbeat brings it back as a new device (which needs a new key to take signed updates)."""
    try:
        extension.of().registry.forget(get_db(), name)
    except NotForgettable as exc:
        _die(EXIT_SETUP, "cannot forget %s: %s" % (name, exc))
    click.echo("forgot %s: its record and its key; its push history stays" % name)
