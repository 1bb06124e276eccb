"""`make demo`: the server (as `make run` starts it) plus three simulated devices.

The devices run the real firmware on the MicroPython unix port against the server's embedded
broker, with their flash folders under instance/sim/. Ctrl-C stops everything.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .launcher import SimDevice

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("lamp-hall", "lamp-bedroom", "relay-garden")


def _wait_port(port, proc, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("demo: the server exited (code %d); see its output above"
                             % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("demo: nothing listening on port %d after %ds" % (port, deadline_s))


def _device_keys():
    """The demo devices are added like real ones: each gets its key, so triggers are signed."""
    from webapp import create_app, keys
    from webapp.db import get_db
    app = create_app()
    with app.app_context():
        db = get_db()
        return {name: keys.get(db, name) or keys.add(db, name) for name in NAMES}


def main():
    env = dict(os.environ)
    # Everything runs on this machine: devices connect back over loopback.
    env.setdefault("OTA_ADVERTISE_HOST", "127.0.0.1")
    broker_port = int(env.get("OTA_EMBEDDED_BROKER_PORT", "1883"))
    http = env.get("OTA_HTTP_BIND", "0.0.0.0:8000")
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                               "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env)
    devices = []
    keys_by_name = _device_keys()
    try:
        _wait_port(broker_port, server)
        flash_root = ROOT / "instance" / "sim"
        for name in NAMES:
            # A board confirms an update after 30 s of healthy running; 5 s for the demo.
            dev = SimDevice(name, flash_root / name, broker_port=broker_port, heartbeat=5,
                            settings={"confirm_after": 5, "key": keys_by_name[name]},
                            log_path=flash_root / ("%s.log" % name))
            devices.append(dev.start())
        print("\ndemo: open http://127.0.0.1:%s/  devices: %s (logs in %s)\n"
              "demo: push from a shell:  .venv/bin/flask --app wsgi ota push FILE --device %s "
              "--wait\n" % (http.rsplit(":", 1)[1], ", ".join(NAMES), flash_root, NAMES[0]),
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for dev in devices:
            dev.stop()
        if server.poll() is None:
            server.terminate()
            server.wait(15)


if __name__ == "__main__":
    main()
