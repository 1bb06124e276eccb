"""Figure 7: the devices page and /api/devices with hundreds of live devices (issue 13).

A real gunicorn and mosquitto, and N heartbeat-only devices (tests/support/heartbeats.py: the
firmware's heartbeat, its 19 runtime files listed, every 10 s, spread over the interval):
  (a) the devices page in headless Chromium over SECONDS: the share of its main thread
      spent in tasks (CDP Performance.getMetrics TaskDuration over the wall time), its
      longest task (a PerformanceObserver for 'longtask') and the bytes its polls bring;
  (b) /api/devices answered to a client on loopback: the page's own poll (its view, a cursor
      two seconds old, files=changed), the plain ?since= poll and the whole list, p50 and
      p95; and the first page's size;
  (c) the server's worker process (the one that takes every heartbeat): its RSS and CPU
      share with 100 and with N devices, heartbeats alone.
--before REV measures (a) and (b) on REV too (git archive of REV, its server and page run
from a temporary folder), side by side: the figures before the change.

Run alone: .venv/bin/python -m tests.bench.devices_page [--devices 500] [--seconds 30]
           [--before main]
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import re
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.bench.table import Figure, spread
from tests.support.browser import chromium, log_in
from tests.support.heartbeats import HeartbeatFleet
from tests.support.mosquitto import Mosquitto
from tests.support.server import ROOT, Gunicorn
from tests.support.waiting import wait_until

BUSY_TARGET = 10.0  # % of the page's main thread
API_TARGET_MS = 20.0  # p95
PAGE_TARGET = 200 * 1024
ADMIN, PASSWORD = "admin", "correct horse battery"  # Gunicorn.api_token's
CLOCK = os.sysconf("SC_CLK_TCK")

# Installed before the page's own scripts: every long task and every resource timing kept.
OBSERVE = """
window.__longtasks = [];
performance.setResourceTimingBufferSize(100000);
new PerformanceObserver((list) => { for (const e of list.getEntries())
  window.__longtasks.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});
"""


@contextlib.contextmanager
def fleet_server(tmp, count, root=ROOT, prefix="node"):
    """mosquitto, gunicorn from `root`, `count` heartbeat senders; yields (server, token,
    fleet) once the server lists every device."""
    with Mosquitto() as mq, Gunicorn(Path(tmp) / "server", root=root,
                                     MQTT_BROKER_URL="127.0.0.1",
                                     MQTT_BROKER_PORT=mq.port) as server:
        token = server.api_token(ADMIN, PASSWORD)
        with HeartbeatFleet(mq.port, count, prefix=prefix) as fleet:
            fleet.wait_connected(60)
            wait_until(lambda: len(api(server, token, "/api/devices")[1]["devices"]) >= count,
                       timeout=60, interval=1, what="the server to list %d devices" % count)
            yield server, token, fleet


def api(server, token, path):
    """(seconds, decoded answer, body bytes) of one GET."""
    req = urllib.request.Request(server.url + path, headers={
        "Authorization": "Bearer " + token, "Accept": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t0, json.loads(body), len(body)


class Usage:
    """CPU seconds and RSS of one process, from /proc."""

    def __init__(self, pid):
        self.pid = pid
        self.t0, self.cpu0 = time.monotonic(), self.cpu()

    def cpu(self):
        fields = Path("/proc/%d/stat" % self.pid).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime

    def share(self):
        """% of one core since this was made."""
        return 100 * (self.cpu() - self.cpu0) / (time.monotonic() - self.t0)

    def rss_mb(self):
        for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def renderers(driver):
    """The process ids of this browser's renderers (each page's main thread is the thread
    whose id is its process's)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        except (OSError, ValueError):
            continue
    found, todo = [], [driver.service.process.pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if b"--type=renderer" in Path("/proc/%d/cmdline" % pid).read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def main_thread_cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = Path("/proc/%d/task/%d/stat" % (pid, pid)).read_text().rsplit(")", 1)[1]
        except OSError:
            continue
        total += (int(fields.split()[11]) + int(fields.split()[12])) / CLOCK
    return total


def bounded(call, timeout):
    """call()'s answer, or None when the page's main thread does not answer in time (a
    hung page answers no script and no DevTools call)."""
    box = []
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(timeout)
    return box[0] if box else None


def page_busy(server, seconds, log=print):
    """(a) on the page a person opens after logging in; a dict of what was measured. Busy
    is the CPU time of the renderers' main threads over the wall time (from /proc: it is
    measured on a hung page too)."""
    driver = chromium()
    try:
        driver.set_page_load_timeout(600)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVE})
        t0 = time.monotonic()
        bounded(lambda: log_in(driver, server.url, ADMIN, PASSWORD, timeout=180), 180)
        loaded = time.monotonic() - t0
        time.sleep(3)  # the page's first full answer, then only polls
        worker, pids = Usage(server.worker_pid()), renderers(driver)
        c0, w0 = main_thread_cpu(pids), time.monotonic()
        js0 = bounded(lambda: driver.execute_script("return performance.now()"), 10)
        time.sleep(max(0.0, seconds - (time.monotonic() - w0)))
        c1, w1 = main_thread_cpu(pids), time.monotonic()
        found = {"busy": 100 * (c1 - c0) / (w1 - w0), "wall": w1 - w0, "load_s": loaded,
                 "server_cpu": worker.share(), "longest": None, "long_tasks": None,
                 "polls": None, "poll_bytes_s": None}
        seen = None if js0 is None else bounded(lambda: driver.execute_script(
            "const t = performance.now();"
            "return [t, window.__longtasks.filter(([s]) => s >= arguments[0]).map(([, d]) => d),"
            " performance.getEntriesByType('resource').filter(e => e.startTime >= arguments[0]"
            " && e.name.includes('/api/devices')).map(e => e.encodedBodySize)]", js0), 10)
        if seen is not None:
            js1, tasks, polls = seen
            found.update(longest=max(tasks, default=0.0), long_tasks=len(tasks),
                         polls=len(polls), poll_bytes_s=sum(polls) / ((js1 - js0) / 1000))
        log("  page: busy %.1f %%, longest task %s, %s polls, %s poll bytes/s" % (
            found["busy"], found["longest"], found["polls"], found["poll_bytes_s"]))
        return found
    finally:
        bounded(driver.quit, 30)


def page_size(server):
    """The first page's bytes, as a browser that logs in gets it."""
    jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = jar.open(server.url + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    jar.open(server.url + "/login", urllib.parse.urlencode({
        "username": ADMIN, "password": PASSWORD, "csrf_token": token}).encode(), timeout=30)
    with jar.open(server.url + "/", timeout=120) as r:
        return len(r.read())


def api_latency(server, token, requests=100):
    """(b): {label: [seconds]} and the answers' sizes, each asked as the page would: once
    per request, a cursor two seconds old (a poll a second after the last, one second of
    overlap)."""
    asks = {
        "the page's poll (its view, ?since=, files=changed)":
            "/api/devices?page=1&sort=name&files=changed&since=%f",
        "?since= (every device that changed, with its files)": "/api/devices?since=%f",
        "the whole list (no cursor)": "/api/devices",
    }
    times, sizes = {}, {}
    for label, path in asks.items():
        times[label], sizes[label] = [], []
        for _ in range(requests if "%f" in path else max(10, requests // 5)):
            took, _, size = api(server, token, path % (time.time() - 2) if "%f" in path
                                else path)
            times[label].append(took)
            sizes[label].append(size)
            time.sleep(0.05)
    return times, sizes


def server_usage(tmp, counts, seconds, log=print):
    """(c): {count: (RSS MB, CPU %)}, one server taking heartbeats from more and more
    devices (no page open)."""
    found = {}
    with Mosquitto() as mq, Gunicorn(Path(tmp) / "usage", MQTT_BROKER_URL="127.0.0.1",
                                     MQTT_BROKER_PORT=mq.port) as server:
        token = server.api_token()
        fleets, started = [], 0
        try:
            for count in counts:
                names = ["node-%03d" % i for i in range(started, count)]
                fleets.append(HeartbeatFleet(mq.port, 0, names=names).start())
                fleets[-1].wait_connected(60)
                started = count
                wait_until(lambda: len(api(server, token, "/api/devices")[1]["devices"])
                           >= count, timeout=60, interval=1, what="%d devices" % count)
                time.sleep(5)
                usage = Usage(server.worker_pid())
                time.sleep(seconds)
                found[count] = (usage.rss_mb(), usage.share())
                log("  server: %d devices, RSS %.0f MB, CPU %.1f %%" % (
                    count, *found[count]))
        finally:
            for f in fleets:
                f.stop()
    return found


def checkout(rev, into):
    """REV's tree (git archive) in folder `into`; returns it."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into)
    return Path(into)


def run(devices=500, seconds=30, before=None, log=print):
    fig = Figure(7, "devices page at %d devices" % devices,
                 "The devices page and /api/devices with %d live devices" % devices,
                 "page main thread busy under %g %%; /api/devices?since= p95 under %g ms; "
                 "first page under %d KB" % (BUSY_TARGET, API_TARGET_MS, PAGE_TARGET // 1024),
                 ["tree", "measure", "runs", "min", "median", "max"])
    trees = [("this tree", ROOT)]
    with tempfile.TemporaryDirectory(prefix="dcc-bench-page-") as tmp:
        if before:
            trees.insert(0, ("%s (before)" % before, checkout(before, Path(tmp) / "before")))
        pages = {}
        for label, root in trees:
            log("  %s: %d heartbeat senders" % (label, devices))
            with fleet_server(Path(tmp) / label.split()[0], devices, root) as (server, token, _):
                size = page_size(server)
                times, sizes = api_latency(server, token)
                page = pages[label] = page_busy(server, seconds, log)
                page["page_bytes"] = size
            hung = "no answer: its main thread never came back within %.0f s" % page["wall"]
            fig.row(label, "page main thread busy (%% of %.0f s)" % page["wall"], 1,
                    "-", "%.1f %%" % page["busy"], "-")
            fig.row(label, "longest task; tasks over 50 ms", 1, "-", hung
                    if page["longest"] is None else "%.0f ms; %d" % (page["longest"],
                                                                     page["long_tasks"]), "-")
            fig.row(label, "poll bytes per second", 1, "-", hung if page["polls"] is None
                    else "%.1f KB/s (%d polls)" % (page["poll_bytes_s"] / 1024,
                                                   page["polls"]), "-")
            fig.row(label, "first page (HTML); logged in and loaded", 1, "-",
                    "%.0f KB; %.1f s" % (size / 1024, page["load_s"]), "-")
            fig.row(label, "server CPU while the page is open", 1, "-",
                    "%.1f %%" % page["server_cpu"], "-")
            for what, ts in times.items():
                ms = sorted(1000 * t for t in ts)
                p95 = ms[int(len(ms) * 0.95)]
                page.setdefault("p95", p95)  # the first: the page's own poll
                fig.row(label, "%s, %.0f KB: p50 / p95" % (what, max(sizes[what]) / 1024),
                        len(ms), "%.1f ms" % ms[0], "%.1f / %.1f ms" % (ms[len(ms) // 2], p95),
                        "%.1f ms" % ms[-1])
        usage = server_usage(tmp, (100, devices), seconds, log)
    for count, (rss, cpu) in usage.items():
        fig.row("this tree", "server worker with %d devices: RSS; CPU" % count, 1, "-",
                "%.0f MB; %.1f %% of a core" % (rss, cpu), "-")
    fig.note("Heartbeat-only devices (tests/support/heartbeats.py), each listing the 19 "
             "files of the runtime as a board does; spread over their 10 s interval.")
    fig.note("Busy: the CPU time of the page's renderer main thread (/proc) over the wall "
             "time, from 3 s after the page loaded; a long task is one over 50 ms "
             "(PerformanceObserver), read when the page answers a script within 10 s.")
    fig.note("The server's CPU is the gunicorn worker's (utime + stime in /proc), in % of "
             "one core of this 2-core machine; mosquitto and the senders run beside it.")
    now = pages["this tree"]
    met = (now["busy"] < BUSY_TARGET and now["p95"] < API_TARGET_MS
           and now["page_bytes"] < PAGE_TARGET)
    fig.judge(met, "page busy %.1f %%, longest task %s ms, poll p95 %.1f ms, first page "
              "%.0f KB" % (now["busy"], now["longest"], now["p95"], now["page_bytes"] / 1024))
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--before", metavar="REV", help="also measure REV's page and server")
    args = parser.parse_args()
    print(run(args.devices, args.seconds, args.before).markdown())


if __name__ == "__main__":
    main()
