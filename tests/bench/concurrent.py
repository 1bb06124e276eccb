"""Figure 5: the server under concurrent pushes: total time, peak RSS and CPU.

The server runs as `make run` starts it (gunicorn, one gthread worker: tests/support/server.py)
against mosquitto, with 20 simulated devices (heap 38wK, each its own id and flash folder).
Each run starts a fresh server, uploads the file through the API, then starts N pushes at
once (`POST /api/pushes` with N devices) and polls `GET /api/pushes?ids=...` until all end.
Measured on the worker process (it holds the MQTT client and the push threads):
  time: from the POST until every push is done (devices back online with the file);
  peak RSS: VmHWM, reset (/proc/PID/clear_refs) after the upload, so it covers the pushes;
  CPU: user + system time of the worker over the same span.

Run alone: .venv/bin/python -m tests.bench.concurrent [--runs 3]
"""
import argparse
import json
import os
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.bench import common
from tests.bench.table import Figure, spread
from tests.support.devices import MqttWatcher
from tests.support.mosquitto import Mosquitto
from tests.support.server import Gunicorn
from tests.support.waiting import wait_until

MB = 1024 * 1024
LEVELS = ((1, 1 * MB), (10, 1 * MB), (20, 1 * MB), (20, 4 * MB), (1, 16 * MB))
DEVICES = 20
TARGET_MB = 20
TICK = os.sysconf("SC_CLK_TCK")
MASTER_RSS = []


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, ctype="application/json", timeout=30):
        req = urllib.request.Request(self.base + path, body, method=method, headers={
            "Authorization": "Bearer " + self.token, "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def working(self):
        """Whether /api/health says the server works (a 503 while its broker link comes up)."""
        try:
            return self.call("GET", "/api/health")["mqtt_connected"]
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return False
            raise

    def upload(self, name, data):
        b = "----dccbench"
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n" % (b, name)).encode()
                + data + ("\r\n--%s--\r\n" % b).encode())
        return self.call("POST", "/api/files", body, "multipart/form-data; boundary=" + b,
                         timeout=120)["files"][0]


def worker_pid(master):
    """gunicorn's worker: the master's child."""
    def child():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == master:
                    return int(entry)
        return None
    return wait_until(child, 30, what="the gunicorn worker")


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def one_run(root, broker_port, names, size, tag):
    """(seconds, peak RSS MB, baseline RSS MB, CPU s) for len(names) pushes at once."""
    with Gunicorn(Path(root) / ("server-" + tag), MQTT_BROKER_URL="127.0.0.1",
                  MQTT_BROKER_PORT=broker_port, OTA_SECRET_KEY="bench",
                  OTA_CONFIRM_TIMEOUT=60) as server:
        api = Api(server.url, server.api_token())
        pid = worker_pid(server.proc.pid)
        wait_until(lambda: api.working(), 30, what="the server's MQTT link")
        want = set(names)
        wait_until(lambda: want <= {d["name"] for d in api.call("GET", "/api/devices")["devices"]
                                    if d["online"]}, 30, what="the devices at the server")
        f = api.upload("blob-%s.bin" % tag, os.urandom(size))
        with open("/proc/%d/clear_refs" % pid, "w") as cr:
            cr.write("5")  # peak RSS from here on
        base = status_kb(pid, "VmRSS")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        ids = api.call("POST", "/api/pushes", json.dumps(
            {"file": f["sha256"], "devices": list(names)}).encode())["pushes"]
        query = "/api/pushes?limit=500&ids=" + ",".join(str(i) for i in ids)
        pushes = wait_until(lambda: (lambda ps: ps if all(p["state"] in ("done", "failed",
                                                                          "unconfirmed")
                                                          for p in ps) else None)(
            api.call("GET", query)["pushes"]), 120, interval=0.05, what="the pushes")
        seconds, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        peak = status_kb(pid, "VmHWM")
        MASTER_RSS.append(status_kb(server.proc.pid, "VmRSS") / 1024)
        bad = [p for p in pushes if p["state"] != "done"]
        if bad:
            raise RuntimeError("%d of %d pushes did not end done: %s" % (
                len(bad), len(pushes), [(p["device"], p["state"], p["reason"]) for p in bad]))
    return seconds, peak / 1024, base / 1024, cpu


def run(runs=5, levels=LEVELS, log=print):
    fig = Figure(5, "concurrent pushes",
                 "Server under concurrent pushes (gunicorn worker, mosquitto)",
                 "peak RSS grows by less than %d MB from 1 to 20 pushes, and not at all with "
                 "file size" % TARGET_MB,
                 ["pushes at once", "file", "runs", "total time: min", "median", "max",
                  "RSS before", "peak RSS", "growth", "CPU"])
    res = {}
    names = ["conc-%02d" % (i + 1) for i in range(DEVICES)]
    with Mosquitto() as broker, common.workdir("concurrent") as root, \
            MqttWatcher(broker.port, topic="+/status") as w:
        devs = [common.start_device(n, root, common.OURS_SOURCE, broker.port, heartbeat=10)
                for n in names]
        try:
            for d in devs:
                common.wait_online(w, d, lambda hb: True, 30)
            for r in range(runs):
                for n, size in levels:
                    got = one_run(root, broker.port, names[:n], size,
                                  "%d-%d-%d" % (n, size // MB, r))
                    res.setdefault((n, size), []).append(got)
                    log("  concurrent: %2d x %2d MB: %.2f s, peak RSS %.1f MB (before %.1f), "
                        "CPU %.2f s" % (n, size // MB, *got))
        finally:
            for d in devs:
                d.stop()
    for n, size in levels:
        rs = res[n, size]
        med = lambda i: statistics.median(x[i] for x in rs)
        fig.row(n, "%d MB" % (size // MB), *spread([x[0] for x in rs], "%.2f", "s"),
                "%.1f MB" % med(2), "%.1f MB" % med(1),
                "%+.1f MB" % statistics.median(x[1] - x[2] for x in rs),
                "%.2f s (%.0f %% of a core)" % (med(3), 100 * med(3) / med(0)))
    # growth of each run's peak over its own RSS before the pushes (fresh servers differ)
    peak = {k: statistics.median(x[1] - x[2] for x in v) for k, v in res.items()}
    grow = peak[20, MB] - peak[1, MB]
    by_size = [(peak[20, 4 * MB] - peak[20, MB]) if (20, 4 * MB) in peak else 0,
               (peak[1, 16 * MB] - peak[1, MB]) if (1, 16 * MB) in peak else 0]
    fig.note("Medians over the runs; growth is each run's peak RSS over its RSS just before "
             "the POST (after the upload), so it is what the pushes cost.")
    fig.note("Each run a fresh server; %d runs per row, the rows interleaved. The file is "
             "streamed with sendfile from the store, never read into the server's memory. "
             "RSS and CPU are the gunicorn worker's (the master only supervises it: %.0f MB "
             "RSS); mosquitto and the devices are separate processes on the same 2 cores."
             % (runs, statistics.median(MASTER_RSS)))
    fig.judge(grow < TARGET_MB and max(by_size) < 1.0,
              "RSS growth during the pushes %+.1f MB more for 20 than for 1; %+.1f MB from 1 to "
              "4 MB files (20 pushes), %+.1f MB from 1 to 16 MB (1 push)"
              % (grow, by_size[0], by_size[1]),
              "" if grow < TARGET_MB else "each push is a thread with its own stack and "
              "SQLite connection")
    fig.results = res
    return fig


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    print(run(a.runs).markdown())


if __name__ == "__main__":
    main()
