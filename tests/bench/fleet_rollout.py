"""Figure 8: a rollout to 100 simulated devices (the real firmware on the MicroPython unix
port), its total time against the ideal, and where the gap goes.

The server runs in this process with its services (as in a gunicorn worker) against
mosquitto; 100 devices (heap 38wK, heartbeat every 10 s, each its own flash folder) confirm
an update after 1 s of healthy running (a board's default is 30 s: the probation's share of a
real rollout is larger, the server's share the same). One release (a 4 KB app.py) goes out
with a canary of 1, then waves of `wave_size`, at most `concurrency` pushes at once.

  total:  from the rollout's creation to its end (every device done);
  ideal:  sum over the waves of ceil(wave / concurrency) x the slowest push of the rollout
          (its trigger to its confirmation): what it would take if each round took as long
          as the slowest push and nothing else;
  gap:    where the rest goes, from the pushes' timelines: the time between a wave's last
          push ending and the next wave's first push starting (the rollout's own rounds),
          and within a push, queued -> trigger (the push service), trigger -> sent (the
          transfer), sent -> done (reboot and probation on the device).

Run alone: .venv/bin/python -m tests.bench.fleet_rollout [--devices 100]
"""
import argparse
import io
import math
import statistics
import time

from tests.bench import common
from tests.bench.table import Figure
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_until

DEVICES = 100
APP = b"# the fleet's application\n" + b"LEVEL = 1  # padding to 4 KB\n" * 140


def run(devices=DEVICES, canary=1, wave_size=33, concurrency=33):
    from dcc_sim.launcher import SimDevice
    from webapp import extension
    from webapp.db import get_db
    from webapp.push.store import get_push
    from webapp.rollout.store import Settings

    fig = Figure(8, "fleet rollout", "A rollout to %d simulated devices" % devices,
                 "the total time against the ideal (issue 13)",
                 ["devices", "waves", "concurrency", "total (s)", "ideal (s)", "gap (s)",
                  "slowest push (s)", "median push (s)"])
    with common.workdir("fleet") as tmp, Mosquitto() as mq, \
            common.server(tmp, {"MQTT_BROKER_URL": "127.0.0.1",
                                "MQTT_BROKER_PORT": mq.port}) as app:
        names = ["fleet-%03d" % i for i in range(devices)]
        sims = [SimDevice(n, "%s/flash/%s" % (tmp, n), broker_port=mq.port, heartbeat=10,
                          settings={"confirm_after": 1}) for n in names]
        try:
            for sim in sims:
                sim.start()
            ext = extension.of(app)

            def all_online():
                with app.app_context():
                    found = [d for d in ext.registry.all(get_db())
                             if d.online and "bundle" in d.features]
                return len(found) == devices or None
            wait_until(all_online, 180, what="%d devices online" % devices)
            with app.app_context():
                db = get_db()
                stored = ext.store.save(db, io.BytesIO(APP), "app.py")
                ext.releases.create(db, "fleet-1", [("app.py", stored)])
                settings = Settings(canary=canary, wave_size=wave_size,
                                    concurrency=concurrency, auto_continue=True)
                t0 = time.time()
                rid = ext.rollouts.create(db, "fleet-1", names, settings)

            def ended():
                with app.app_context():
                    shown = ext.rollouts.describe(get_db(), rid)
                return shown if shown["state"] in ("done", "failed", "stopped", "cancelled") \
                    else None
            shown = wait_until(ended, 900, what="the rollout's end")
            with app.app_context():
                pushes = [get_push(get_db(), d["push_id"]) for d in shown["devices"]]
        finally:
            for sim in sims:
                sim.stop()
    total = shown["finished_at"] - t0
    at = [{e["state"]: e["at"] for e in p["events"]} for p in pushes]
    spans = [p["finished_at"] - a["queued"] for p, a in zip(pushes, at)]  # trigger to done
    waves = {}
    for d, p in zip(shown["devices"], pushes):
        waves.setdefault(d["wave"], []).append(p)
    rounds = sum(math.ceil(len(ps) / concurrency) for ps in waves.values())
    ideal = rounds * max(spans)
    between = sum(min(p["created_at"] for p in waves[w]) -
                  max(p["finished_at"] for p in waves[w - 1]) for w in sorted(waves) if w)
    fig.row(devices, len(waves), concurrency, "%.1f" % total, "%.1f" % ideal,
            "%.1f" % (total - ideal), "%.1f" % max(spans), "%.1f" % statistics.median(spans))
    phase = lambda a, b: statistics.median(x[b] - x[a] for x in at if a in x and b in x)
    fig.note("state: %s (%s)" % (shown["state"], shown["reason"]))
    fig.note("between waves (a wave's last push ending to the next one's first starting), "
             "summed: %.1f s" % between)
    stagger = sum(max(p["created_at"] for p in ps) - min(p["created_at"] for p in ps)
                  for ps in waves.values())
    fig.note("within the waves (a wave's first push made to its last one made), summed: "
             "%.1f s" % stagger)
    fig.note("median push phases: queued -> trigger sent %.2f s, trigger -> sent %.2f s, "
             "sent -> done (reboot, probation of 1 s, confirmation) %.2f s" % (
                 phase("queued", "trigger_sent"), phase("trigger_sent", "sent"),
                 phase("sent", "done")))
    fig.note("the slowest push is slower than the median because %d devices reboot and "
             "start at once on 2 cores" % concurrency)
    fig.judge(True, "total %.1f s against an ideal of %.1f s (%d rounds of the slowest push)"
              % (total, ideal, rounds), status="measured")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=DEVICES)
    p.add_argument("--wave-size", type=int, default=33)
    p.add_argument("--concurrency", type=int, default=33)
    a = p.parse_args(argv)
    print(run(a.devices, wave_size=a.wave_size, concurrency=a.concurrency).markdown())


if __name__ == "__main__":
    main()
