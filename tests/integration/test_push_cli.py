"""`flask --app wsgi ota ...` run as a real process next to a running server."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import server_config
from tests.support.app import registered, take_offline
from tests.support.files import padded_main_py
from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")

# A device running firmware like the seed's, written from the blog's description: it hears
# `host|port|filename|sha1hex`, reads raw bytes until EOF into a tmp file while hashing,
# renames on a match and reboots. No heartbeat, no status.
SEED_MAIN = b"""
import binascii, hashlib, json, machine, os, socket
from mqtt_client import MQTTClient

cfg = json.load(open("settings.json"))
me = cfg["id"].encode()

def update(msg):
    host, port, name, want = msg.decode().split("|")
    s = socket.socket()
    s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    h = hashlib.sha1()
    with open("tmp", "wb") as f:
        while True:
            chunk = s.recv(536)
            if not chunk:
                break
            h.update(chunk)
            f.write(chunk)
    s.close()
    if binascii.hexlify(h.digest()).decode() == want:
        os.rename("tmp", name)
        machine.reset()

c = MQTTClient(me, cfg["broker"], cfg["port"])
c.connect()
c.subscribe(me + b"/OTA")
print("seed device listening")
while True:
    m = c.check_msg(1000)
    if m and m[0] == me + b"/OTA":
        update(m[1])
"""


def cli_env(mosquitto, tmp_path, **over):
    env = dict(os.environ)
    for key, value in server_config(mosquitto, tmp_path, **over).items():
        env[key] = "%d-%d" % value if isinstance(value, tuple) else str(value)
    return env


def ota(env, *args, timeout=90):
    return subprocess.run([FLASK, "--app", "wsgi", "ota", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_push_wait_exits_0_when_the_device_runs_the_new_file(server, devices, unique, mosquitto,
                                                             tmp_path):
    name = unique("cli")
    dev = devices(name)
    registered(server, name, lambda d: d.online and d.extended)
    src = tmp_path / "main.py"
    src.write_bytes(padded_main_py(3800, tag="cli"))

    done = ota(cli_env(mosquitto, tmp_path), "push", str(src), "--device", name, "--wait")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: confirmed after its probation" in done.stdout
    for step in ("trigger_sent", "connected", "verified", "rebooting", "online"):
        assert step in done.stdout
    assert (dev.flash_dir / "main.py").read_bytes() == src.read_bytes()
    sha1 = hashlib.sha1(src.read_bytes()).hexdigest()
    registered(server, name, lambda d: d.files.get("main.py") == sha1)
    # The server kept its own MQTT session all along: the CLI used another client id.
    assert server.extensions["dcc_ota"].services.bus.connected.is_set()

    listing = ota(cli_env(mosquitto, tmp_path), "devices")
    assert listing.returncode == 0
    line = next(l for l in listing.stdout.splitlines() if l.startswith(name))
    assert "online" in line
    runs = registered(server, name).runs  # what it runs: "1.29.0-preview, .mpy v6.3 (x64)"
    # then its release and its tags: none of either
    assert ".mpy v6." in runs and line.split()[-2:] == ["-", "-"]
    assert line.rstrip()[:-1].rstrip()[:-1].rstrip().endswith(runs)


def test_push_to_an_offline_device_exits_1_with_one_line(server, devices, unique, mosquitto,
                                                         tmp_path):
    name = unique("off")
    dev = devices(name)
    registered(server, name, lambda d: d.online)
    take_offline(server, dev)  # the broker publishes its last will
    src = tmp_path / "x.py"
    src.write_text("X = 1\n")

    failed = ota(cli_env(mosquitto, tmp_path), "push", str(src), "--device", name, "--wait")

    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == ["push failed: device offline: not back within 2s"]
    assert "waiting" in failed.stdout


def test_usage_errors_exit_2_with_the_reason(mosquitto, tmp_path):
    src = tmp_path / "x.py"
    src.write_text("X = 1\n")
    env = cli_env(mosquitto, tmp_path)

    hostile = ota(env, "push", str(src), "--device", "lamp", "--as", "../boot.py")
    assert hostile.returncode == 2 and "'..'" in hostile.stderr

    settings = ota(env, "push", str(src), "--device", "lamp", "--as", "settings.json")
    assert settings.returncode == 2 and "settings" in settings.stderr

    no_broker = ota(cli_env(mosquitto, tmp_path, MQTT_BROKER_PORT=free_port()),
                    "push", str(src), "--device", "lamp", "--wait")
    assert no_broker.returncode == 2
    assert "cannot reach the MQTT broker" in no_broker.stderr


def test_a_seed_style_device_is_updated_with_the_four_field_trigger(devices, unique, mosquitto,
                                                                    tmp_path):
    name = unique("seed")
    flash = tmp_path / "flash" / name
    flash.mkdir(parents=True)
    (flash / "main.py").write_bytes(SEED_MAIN)
    shutil.copy(ROOT / "firmware" / "mqtt_client.py", flash)
    dev = devices(name, flash=flash)  # has a main.py: the simulator keeps the seed's files
    wait_until(lambda: "seed device listening" in dev.log_text(), 15, what="the seed device")
    src = tmp_path / "lamp.cfg"
    src.write_bytes(b"led=off\n" * 500)

    # No server running: the CLI pushes by itself, as the seed's sender did.
    delivered = ota(cli_env(mosquitto, tmp_path), "push", str(src), "--device", name, "--wait")

    assert delivered.returncode == 3, delivered.stdout + delivered.stderr
    assert "legacy form" in delivered.stdout
    assert "delivered, unconfirmed" in delivered.stderr
    assert (flash / "lamp.cfg").read_bytes() == src.read_bytes()


def test_several_files_go_as_one_update(server, devices, unique, mosquitto, tmp_path):
    name = unique("bundle")
    dev = devices(name)
    registered(server, name, lambda d: d.online and "bundle" in d.features)
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("A = 1\n")
    b.write_text("B = 2\n")

    done = ota(cli_env(mosquitto, tmp_path), "push", str(a), str(b), "--device", name, "--wait")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "bundle form" in done.stdout
    assert (dev.flash_dir / "a.py").read_text() == "A = 1\n"
    assert (dev.flash_dir / "b.py").read_text() == "B = 2\n"


def test_the_safe_boot_code_needs_force(mosquitto, tmp_path):
    boot = tmp_path / "boot.py"
    boot.write_text("import safeboot\n")
    env = cli_env(mosquitto, tmp_path)

    refused = ota(env, "push", str(boot), "--device", "lamp")
    assert refused.returncode == 2
    assert "boot.py is the safe-boot code" in refused.stderr and "force" in refused.stderr

    two = ota(env, "push", str(boot), str(boot), "--device", "lamp", "--as", "x.py")
    assert two.returncode == 2 and "--as names one file" in two.stderr


def test_rm_deletes_a_file_on_the_device_and_refuses_the_runtime(server, devices, unique,
                                                                 mosquitto, tmp_path):
    name = unique("rm")
    dev = devices(name, settings={"confirm_after": 1})
    registered(server, name, lambda d: d.online and "rm" in d.features)
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"the lamp on the landing\n")
    env = cli_env(mosquitto, tmp_path)
    assert ota(env, "push", str(notes), "--device", name, "--wait").returncode == 0
    registered(server, name, lambda d: "notes.txt" in d.files)

    refused = ota(env, "rm", "main.py", "--device", name)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "cannot delete: main.py is part of the device's runtime: without it the board cannot "
        "stay reachable; confirm you know (force) to delete it"]

    gone = ota(env, "rm", "notes.txt", "--device", name, "--wait")

    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "delete notes.txt" in gone.stdout and "done: confirmed" in gone.stdout
    assert not (dev.flash_dir / "notes.txt").exists()
    assert (dev.flash_dir / "main.py").exists()
    again = ota(env, "rm", "notes.txt", "--device", name)
    assert again.returncode == 2 and "notes.txt is not on the device" in again.stderr


def test_precompile_writes_the_runtime_for_a_board_short_of_ram(mosquitto, tmp_path):
    out = tmp_path / "build"
    made = ota(cli_env(mosquitto, tmp_path), "precompile", str(out))

    assert made.returncode == 0, made.stderr
    sources = sorted(p.name for p in (ROOT / "firmware").glob("*.py"))
    want = {n if n in ("boot.py", "main.py") else n[:-3] + ".mpy" for n in sources}
    assert {p.name for p in out.iterdir()} == want
    assert sorted(made.stdout.split()) == sorted(str(out / n) for n in want)
    for name in want - {"boot.py", "main.py"}:
        assert (out / name).read_bytes()[:2] == b"M\x06", name  # .mpy, version 6
    assert (out / "main.py").read_bytes() == (ROOT / "firmware" / "main.py").read_bytes()
