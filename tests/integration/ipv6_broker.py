"""A push with the broker reached over a global IPv6 address and OTA_ADVERTISE_HOST unset, run
inside a network namespace of its own (`unshare --map-root-user --net`, by
test_advertise_ipv6.py): its loopback gets the documentation address 2001:db8::1, so no
traffic leaves this process tree.

The server reaches mosquitto over 2001:db8::1; the device (no IPv6, as an ESP8266) over
127.0.0.1. Prints one JSON line: the push's row, and our end of the broker connection.
"""
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dcc_sim.launcher import SimDevice
from tests.support.app import finished, registered
from tests.support.mosquitto import Mosquitto
from webapp import create_app
from webapp.db import get_db
from webapp.services import start_services, stop_services

ADDRESS = "2001:db8::1"  # RFC 3849, for documentation: global scope, reaches nothing
PORT = 18830  # a new namespace has every port free


def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-6", "addr", "add", ADDRESS + "/128", "dev", "lo"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="ipv6-"))
    broker = Mosquitto(port=PORT, listener_options="listener %d %s\nallow_anonymous true"
                       % (PORT, ADDRESS))
    with broker:
        app = create_app({"OTA_DATABASE": str(tmp / "db.sqlite"),
                          "OTA_FILE_STORE": str(tmp / "files"),
                          "MQTT_BROKER_URL": ADDRESS, "MQTT_BROKER_PORT": PORT,
                          "OTA_TRANSFER_TIMEOUT": 10.0, "OTA_CONFIRM_TIMEOUT": 30.0})
        services = start_services(app)
        dev = SimDevice("v6-lamp", tmp / "flash", broker_port=PORT, heartbeat=2,
                        settings={"confirm_after": 1}).start()
        try:
            registered(app, dev.name, lambda d: d.online and "bundle" in d.features, timeout=30)
            with app.app_context():
                stored = app.extensions["dcc_ota"].store.save(
                    get_db(), io.BytesIO(b"HELLO = 'over IPv6'\n"), "hello.py")
                push_id = services.pushes.create(get_db(), dev.name, [stored], "hello.py")
            row = finished(app, push_id, timeout=60)
            print(json.dumps({"state": row["state"], "reason": row["reason"],
                              "detail": row["detail"], "local": services.bus.local_address(),
                              "events": [e["detail"] for e in row["events"]]}))
        finally:
            dev.stop()
            stop_services(app)


if __name__ == "__main__":
    sys.exit(main())
