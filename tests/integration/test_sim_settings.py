"""Issue 12: `ota-sim` keeps a flash folder's own settings.json (its key, its Wi-Fi, whatever
was put there) and changes only what its own options name, saying so in one line. Here a
folder is set up as the README says for a board: the precompiled runtime and the settings
`ota device-add` wrote, with the device's key; then the real `ota-sim` runs it and the server
signs a push it takes."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.app import finished, registered
from tests.support.waiting import wait_until
from webapp import board_tools, keys
from webapp.db import get_db

pytestmark = pytest.mark.integration

OTA_SIM = str(Path(sys.executable).parent / "ota-sim")


def test_a_folder_set_up_by_hand_keeps_its_key_and_settings(server, unique, mosquitto, tmp_path):
    name = unique("kept")
    with server.app_context():
        key = keys.add(get_db(), name)
        settings = keys.settings(server, name, key)
    settings.update(broker="192.168.1.10", wifi_ssid="landing", wifi_password="s3cret",
                    confirm_after=1)
    root = tmp_path / "flash"
    folder = root / name
    board_tools.board_image(board_tools.board_files(), folder)
    (folder / "settings.json").write_text(json.dumps(settings))

    sim = subprocess.Popen([OTA_SIM, "--names", name, "--flash-root", str(root), "--port",
                            str(mosquitto.port), "--heartbeat", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        registered(server, name, lambda d: d.online and d.secure)
        with server.app_context():
            f = server.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(b"K = 1\n"), "k.py")
            push_id = server.extensions["dcc_ota"].services.pushes.create(get_db(), name, [f])
        row = finished(server, push_id, timeout=60)
    finally:
        sim.terminate()
        out, _ = sim.communicate(timeout=30)

    assert row["state"] == "done" and "signed" in row["events"][1]["detail"], row
    kept = json.loads((folder / "settings.json").read_text())
    assert kept == dict(settings, broker="127.0.0.1", port=mosquitto.port, heartbeat=1)
    line = next(l for l in out.splitlines() if "settings.json kept" in l)
    assert settings["port"] == mosquitto.port  # the server's broker: unchanged, not named
    assert line == ('ota-sim: %s: settings.json kept; changed broker "192.168.1.10" -> '
                    '"127.0.0.1"' % name)
    assert not (folder / "main.mpy").exists() and (folder / "loader.mpy").exists()
