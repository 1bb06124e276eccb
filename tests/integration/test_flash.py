"""Issue 12: `flask --app wsgi ota flash NAME --port PORT` puts the runtime on a bare board over
USB serial with mpremote. The board here is the MicroPython unix port behind a
pseudo-terminal (socat), which answers mpremote's raw REPL as a board's USB serial does; its
working folder is the board's flash. After the flash the same folder boots as a simulated
device, signs in with the key the flash gave it, and takes a push.

What a real serial board adds that this does not cover: the UART's speed and its lost or
garbled bytes, the board's USB-serial chip and its reset lines (DTR/RTS) as esptool and
mpremote drive them, and a flash file system smaller than the files."""
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dcc_sim.launcher import SHIMS_DIR, find_micropython
from tests.integration.test_push_cli import cli_env, ota
from tests.support.app import finished, registered
from tests.support.waiting import wait_until
from webapp import board_tools, keys
from webapp.db import get_db

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed (.ci/run installs it)")]


@pytest.fixture
def usb_board(tmp_path):
    """(serial port path, flash folder, process) of a board on a pseudo-terminal."""
    flash = tmp_path / "board"
    flash.mkdir()
    tty = tmp_path / "ttyUSB0"
    # machine.reset() from the simulator's shims: the process ends, as a board resets
    env = dict(os.environ, MICROPYPATH=":" + str(SHIMS_DIR))
    proc = subprocess.Popen(["socat", "PTY,link=%s,rawer" % tty,
                             "EXEC:%s,pty,stderr,onlcr=0" % find_micropython()],
                            cwd=flash, env=env)
    wait_until(lambda: tty.exists(), 10, what="the pseudo-terminal")
    yield str(tty), flash, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("how", ["--source", "--precompiled"])
def test_a_bare_board_flashed_over_usb_boots_and_takes_a_push(server, devices, unique, mosquitto,
                                                             tmp_path, usb_board, how):
    tty, flash, board = usb_board
    name = unique("usb")

    done = ota(cli_env(mosquitto, tmp_path), "flash", name, "--port", tty, "--wifi-ssid",
               "landing", "--wifi-password", "s3cret", "--mqtt-user", name, "--mqtt-password",
               "b0ard", how, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "%s: MicroPython 1." % name in done.stdout and "(linux, mpy 6." in done.stdout
    assert ("precompiled" if how == "--precompiled" else "source") in done.stdout
    wait_until(lambda: board.poll() is not None, 20, what="the board to reset")
    sources = [p.name for p in board_tools.board_files()]
    want = set(sources) if how == "--source" else {
        n if n in board_tools.SOURCE_ONLY else n[:-3] + ".mpy" for n in sources}
    assert {p.name for p in flash.iterdir()} == want | {"settings.json"}
    settings = json.loads((flash / "settings.json").read_text())
    with server.app_context():
        key = keys.get(get_db(), name)
    assert (settings["id"], settings["key"], settings["wifi_ssid"]) == (name, key, "landing")
    assert settings["wifi_password"] == "s3cret"
    assert (settings["user"], settings["password"]) == (name, "b0ard")

    # a board confirms an update after 30 s of healthy running; 1 s here, as everywhere in tests
    (flash / "settings.json").write_text(json.dumps(dict(settings, confirm_after=1)))
    devices(name, flash=flash)  # the same folder boots as a simulated device
    registered(server, name, lambda d: d.online and d.secure)
    with server.app_context():
        f = server.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(b"USB = 1\n"), "usb.py")
        push_id = server.extensions["dcc_ota"].services.pushes.create(get_db(), name, [f])
    row = finished(server, push_id)
    assert row["state"] == "done", row
    assert (flash / "usb.py").read_bytes() == b"USB = 1\n"


def test_no_board_on_the_port_is_one_line(mosquitto, tmp_path):
    failed = ota(cli_env(mosquitto, tmp_path), "flash", "lamp1", "--port",
                 str(tmp_path / "nothing"), "--wifi-ssid", "x", "--wifi-password", "y")
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot flash lamp1: mpremote on "), lines


@pytest.mark.parametrize("version, mpy, message", [
    ((1, 18, 0), 5, "MicroPython 1.18.0 is too old: the runtime needs 1.20 or newer"),
    ((2, 0, 0), 7, "MicroPython 2.0.0 loads .mpy format 7; the runtime is built for 6"),
])
def test_an_unsupported_micropython_is_refused_with_the_reason(version, mpy, message):
    with pytest.raises(board_tools.BoardError, match=message):
        board_tools.check_supported({"version": version, "mpy": mpy})


def test_a_wifi_a_board_cannot_take_or_no_terminal_to_ask_on_makes_no_key(server, mosquitto,
                                                                           tmp_path, usb_board):
    tty, flash, _board = usb_board
    env = cli_env(mosquitto, tmp_path)
    long_ssid = ota(env, "flash", "lamp-w", "--port", tty, "--wifi-ssid", "S" * 40,
                    "--wifi-password", "x")
    assert long_ssid.returncode == 2 and "at most 32 bytes" in long_ssid.stderr
    unasked = ota(env, "flash", "lamp-w", "--port", tty)  # stdin is not a terminal here
    assert unasked.returncode == 2
    assert "give --wifi-ssid and --wifi-password (there is no terminal" in unasked.stderr
    nothing = ota(env, "flash", "lamp-w", "--port", str(tmp_path / "nothing"),
                  "--wifi-ssid", "x", "--wifi-password", "y")
    assert nothing.returncode == 1
    with server.app_context():
        assert keys.get(get_db(), "lamp-w") is None  # no board, no key
    assert list(flash.iterdir()) == []
