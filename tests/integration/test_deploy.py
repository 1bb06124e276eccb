"""Issue 12: deploy/ runs the server as a systemd service on a Raspberry Pi. The unit passes
`systemd-analyze verify` (where the command exists: it is part of systemd), its environment
file holds only known settings with valid values, and the unit's own command line, with that
file's settings, starts a working server whose data all lands in OTA_DATA_DIR."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until
from webapp import config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "dcc-ota.service"
ENV_FILE = ROOT / "deploy" / "dcc-ota.env"
INSTALLED = "/opt/dcc-ota/venv/bin/"  # where README's install steps put the virtual environment
VENV = str(Path(sys.executable).parent) + "/"


def unit_value(key):
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
            if line.startswith(key + "=")]


def env_file():
    pairs = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            pairs[name] = value
    return pairs


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (it comes with systemd)")
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    # the one thing this machine lacks is the Pi's /opt/dcc-ota: verify checks that ExecStart
    # exists, so the copy points at this checkout's gunicorn
    unit = tmp_path / "dcc-ota.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, VENV).replace(
        "/etc/dcc-ota/dcc-ota.env", str(ENV_FILE)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_the_unit_restarts_on_failure_as_its_own_user_after_the_network_and_broker():
    assert unit_value("User") == ["dcc-ota"] and unit_value("Restart") == ["on-failure"]
    assert unit_value("After") == ["network-online.target mosquitto.service"]
    assert unit_value("StateDirectory") == ["dcc-ota"]
    assert unit_value("ExecStart") == [
        INSTALLED + "gunicorn -c python:webapp.gunicorn_conf webapp.wsgi:app"]


def test_the_env_file_holds_only_known_settings_with_valid_values():
    pairs = env_file()
    assert config.unknown(pairs) == []
    parsed = config.from_environ(pairs)  # ConfigError names a bad value
    assert set(parsed) | set(config.PROCESS_SETTINGS) >= set(pairs)
    assert pairs["OTA_DATA_DIR"] == "/var/lib/dcc-ota"


def test_the_units_command_with_the_env_file_starts_a_working_server(mosquitto, tmp_path):
    env = dict(os.environ, **env_file())
    http = free_port()
    data = tmp_path / "var-lib-dcc-ota"
    # this machine's addresses in place of the Pi's; the broker without a password
    env.update(OTA_DATA_DIR=str(data), OTA_HTTP_BIND="127.0.0.1:%d" % http,
               MQTT_BROKER_PORT=str(mosquitto.port), OTA_ADVERTISE_HOST="127.0.0.1")
    for name in ("MQTT_USERNAME", "MQTT_PASSWORD"):
        env.pop(name)
    command = shlex.split(unit_value("ExecStart")[0].replace(INSTALLED, VENV))
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def health():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % http,
                                            timeout=2) as r:
                    return json.loads(r.read())
            except (urllib.error.URLError, ConnectionError):
                return None
        assert wait_until(health, 60, what="the service's server working")["working"] is True
        assert {"dcc-ota.sqlite", "files", "secret_key"} <= {p.name for p in data.iterdir()}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "Traceback" not in out, out[-3000:]
    assert "is not a setting" not in out
