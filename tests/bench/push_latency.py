"""Figure 3: push latency of a 3.8 KB main.py, beside each broker setting, in one run.

The server's own push service (in this process) pushes to one simulated ESP8266-sized device
(heap 38wK) on loopback. From the push's timeline:
  trigger → verified:     the trigger's publish until the device reports the file verified;
  trigger → back online:  until the device is back online after its reboot with the new hash.
Brokers: mosquitto with `set_tcp_nodelay true` (the shipped setting), mosquitto with its
default `false`, and the server's embedded amqtt broker (the zero-setup default).

Run alone: .venv/bin/python -m tests.bench.push_latency [--runs 50]
"""
import argparse
import statistics
import time

from tests.bench import common
from tests.bench.table import Figure, spread
from tests.support.app import registered
from tests.support.files import padded_main_py

BROKERS = (
    ("mosquitto", "mosquitto, `set_tcp_nodelay true`"),
    ("mosquitto-default", "mosquitto, default `set_tcp_nodelay false`"),
    ("amqtt", "embedded amqtt (asyncio sets TCP_NODELAY)"),
)
TARGET_MS = 5.0


def measure(kind, runs, log=print):
    """[(trigger→verified, trigger→done)] in seconds for `runs` pushes through broker `kind`."""
    out = []
    with common.workdir("latency") as tmp, common.broker(kind) as conf, \
            common.server(tmp, conf) as app:
        dev = common.start_device("bench-1", tmp, common.OURS_SOURCE, common.broker_port(conf),
                                  heartbeat=10)
        try:
            registered(app, "bench-1", lambda d: d.online and d.extended)
            for i in range(runs):
                push = common.push_and_wait(app, "bench-1",
                                            padded_main_py(3800, tag="bench %d" % i), "main.py")
                at = push["at"]
                back = at.get("online", at["done"])  # on probation from here: the device is back
                out.append((at["verified"] - at["trigger_sent"], back - at["trigger_sent"]))
                time.sleep(0.05)  # let the device settle after its reboot
        finally:
            dev.stop()
    log("  latency: %-18s median verified %.1f ms, back online %.1f ms" % (
        kind, 1000 * statistics.median(v for v, _ in out),
        1000 * statistics.median(d for _, d in out)))
    return out


def run(runs=50, log=print):
    fig = Figure(3, "push latency",
                 "Push latency, 3.8 KB main.py, loopback, heap 38wK",
                 "trigger → verified under %g ms median on loopback" % TARGET_MS,
                 ["broker", "measure", "runs", "min", "median", "max"])
    results = {}
    for kind, label in BROKERS:
        results[kind] = measure(kind, runs, log)
        ms = lambda xs: [1000 * x for x in xs]
        fig.row(label, "trigger → verified on the device",
                *spread(ms(v for v, _ in results[kind]), unit="ms"))
        fig.row(label, "trigger → back online with the new hash",
                *spread(ms(d for _, d in results[kind]), unit="ms"))
    fig.note("One push at a time, %d per broker; the device reboots after each. The seed's "
             "figure for a 3.8 KB file over Wi-Fi was \"under 100 ms\"; the reboot dominates "
             "the whole cycle here too." % runs)
    fig.note("With mosquitto's default `set_tcp_nodelay false`, a small message the broker "
             "sends while its previous one is unacknowledged waits for the receiver's delayed "
             "ACK (about 40 ms): here the device's `connecting`, `connected`, `verified` "
             "statuses follow each other within milliseconds on their way to the server. The "
             "device is not slowed (the back-online times match); the server only learns "
             "later. The transfer socket has TCP_NODELAY on the server's side "
             "(webapp/transfer.py); the device writes only its 33-byte token on it.")
    med = {k: 1000 * statistics.median(v for v, _ in r) for k, r in results.items()}
    fig.judge(med["mosquitto"] < TARGET_MS and med["amqtt"] < TARGET_MS,
              "median trigger → verified %s" % ", ".join(
                  "%.1f ms (%s)" % (med[k], k) for k, _ in BROKERS),
              "" if med["amqtt"] < TARGET_MS else
              "the embedded amqtt broker is pure Python on asyncio: each message costs it "
              "more than mosquitto; use mosquitto where latency matters")
    fig.results = results
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(run(args.runs).markdown())


if __name__ == "__main__":
    main()
