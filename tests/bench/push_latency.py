"""Push latency of a 3.8 KB main.py to a simulated ESP8266-sized device (heap 38wK).

Run: .venv/bin/python -m tests.bench.push_latency [--runs 20]
Real mosquitto (TCP_NODELAY on) on loopback, the server's own push service, one device
running the real firmware. Two figures per push, from the server's timeline:
  trigger → verified: the trigger's publish until the device reports the file verified;
  trigger → done:     until the device is back online after its reboot with the new hash.
"""
import argparse
import io
import tempfile
import time
from pathlib import Path

from dcc_sim.launcher import SimDevice
from tests.bench.table import row, table
from tests.support.files import padded_main_py
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_until
from webapp import create_app
from webapp.db import get_db
from webapp.pushes import FINAL, get_push
from webapp.services import start_services, stop_services


def run(runs, nodelay=True):
    with Mosquitto(nodelay=nodelay) as broker, tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "OTA_DATABASE": tmp + "/db.sqlite", "OTA_FILE_STORE": tmp + "/files",
            "MQTT_BROKER_URL": "127.0.0.1", "MQTT_BROKER_PORT": broker.port,
            "OTA_ADVERTISE_HOST": "127.0.0.1", "OTA_TRANSFER_BIND": "127.0.0.1"})
        import logging
        logging.getLogger("webapp").setLevel(logging.WARNING)
        services = start_services(app)
        dev = SimDevice("bench-1", Path(tmp) / "flash", broker_port=broker.port,
                        heartbeat=10).start()
        store, registry = app.extensions["dcc_ota"]["store"], app.extensions["dcc_ota"]["registry"]
        verified, done = [], []
        try:
            with app.app_context():
                db = get_db()
                wait_until(lambda: (registry.get(db, "bench-1") or 0) and
                           registry.get(db, "bench-1").online, 20, what="the device")
                for i in range(runs):
                    f = store.save(db, io.BytesIO(padded_main_py(3800, tag="bench %d" % i)),
                                   "main.py")
                    push_id = services.pushes.create(db, "bench-1", f)
                    push = wait_until(lambda: (lambda p: p if p["state"] in FINAL else None)(
                        get_push(db, push_id)), 60, what="push %d" % push_id)
                    if push["state"] != "done":
                        raise SystemExit("push %d failed: %s %s" % (push_id, push["reason"],
                                                                    push["detail"]))
                    at = {e["state"]: e["at"] for e in push["events"]}
                    verified.append(at["verified"] - at["trigger_sent"])
                    done.append(at["done"] - at["trigger_sent"])
                    time.sleep(0.2)  # let the device settle after its reboot
        finally:
            dev.stop()
            stop_services(app)
        return verified, done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for nodelay in (True, False):
        verified, done = run(args.runs, nodelay)
        tag = "set_tcp_nodelay %s" % ("true" if nodelay else "false")
        rows += [row("3.8 KB, trigger → verified (%s)" % tag, verified),
                 row("3.8 KB, trigger → back online (%s)" % tag, done)]
    print(table("Push latency, 3.8 KB main.py, loopback, heap 38wK", rows))


if __name__ == "__main__":
    main()
