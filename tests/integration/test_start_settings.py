"""A setting the devices cannot use stops the real CLI and the real gunicorn at start, with one
line naming it. Only loopback is contacted (the refused address is never dialled)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mosquitto import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REFUSED = ("cannot start: OTA_ADVERTISE_HOST='::1' is refused by the devices (bad host): give "
           "an IPv4 address or a host name of letters, digits, '.', '-', '_'")


def environment(tmp_path, **over):
    """A complete setup (a running broker, loopback binds, own state) but for `over`."""
    env = dict(os.environ, OTA_DATABASE=str(tmp_path / "db.sqlite"),
               OTA_FILE_STORE=str(tmp_path / "files"), OTA_TRANSFER_BIND="127.0.0.1",
               OTA_ADVERTISE_HOST="127.0.0.1")
    env.update({k: str(v) for k, v in over.items()})
    return env


def test_the_cli_exits_2_with_one_line_naming_the_setting(mosquitto, tmp_path):
    src = tmp_path / "x.py"
    src.write_text("X = 1\n")
    env = environment(tmp_path, MQTT_BROKER_URL="127.0.0.1", MQTT_BROKER_PORT=mosquitto.port,
                      OTA_ADVERTISE_HOST="::1")

    for args in (["push", str(src), "--device", "lamp", "--wait"], ["devices"]):
        done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "ota", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.splitlines() == [REFUSED]
        assert done.stdout == ""


def test_gunicorn_refuses_to_start_with_that_one_line(tmp_path):
    env = environment(tmp_path, OTA_HTTP_BIND="127.0.0.1:%d" % free_port(),
                      OTA_EMBEDDED_BROKER_BIND="127.0.0.1", OTA_EMBEDDED_BROKER_PORT=free_port(),
                      OTA_ADVERTISE_HOST="::1")

    # As `make run` starts it. It must stop by itself, not start worker after worker.
    done = subprocess.run([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)

    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout, done.stdout
    named = [line for line in done.stdout.splitlines() if "OTA_ADVERTISE_HOST" in line]
    assert named == [REFUSED], done.stdout
    assert done.stdout.count("Booting worker") == 1, done.stdout
