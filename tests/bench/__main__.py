"""`make bench`: every benchmark figure in one run; prints the tables, writes docs/benchmarks.md.

    .venv/bin/python -m tests.bench              # every figure, then docs/benchmarks.md
    .venv/bin/python -m tests.bench --quick      # fewer repeats, prints only (a smoke run)
    .venv/bin/python -m tests.bench.heap_floor   # one figure (also peak_heap, push_latency,
                                                 # throughput, concurrent, module_heap,
                                                 # devices_page, fleet_rollout)

Benchmarks are never timed assertions: they print what they measured, against the targets of
the issue that asked for them. Each comparison is measured side by side in the same run.
"""
import argparse
import datetime
import sys
import time
from pathlib import Path

from tests.bench import (common, concurrent, devices_page, fleet_rollout, heap_floor,
                         module_heap, peak_heap, push_latency, throughput)
from tests.bench.table import machine

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and no docs/benchmarks.md: a smoke run")
    p.add_argument("--out", default=str(DOC),
                   help="where to write the Markdown (default %(default)s)")
    a = p.parse_args(argv)
    q = a.quick
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    figures = []
    steps = [
        ("heap floor", lambda: heap_floor.run()),
        ("peak heap", lambda: peak_heap.run(runs=3 if q else 10)),
        ("push latency", lambda: push_latency.run(runs=10 if q else 50)),
        ("throughput", lambda: throughput.run(runs=3 if q else 30)),
        ("concurrent pushes", lambda: concurrent.run(runs=1 if q else 5)),
        ("module heap", lambda: module_heap.run()),
        ("devices page", lambda: devices_page.run(seconds=10 if q else 30)),
        ("fleet rollout", lambda: fleet_rollout.run(devices=20 if q else 100)),
    ]
    for name, step in steps:
        print("== %s" % name, flush=True)
        s0 = time.monotonic()
        fig = step()
        fig.seconds = time.monotonic() - s0
        figures.append(fig)
        print(fig.markdown(), flush=True)
    wall = time.monotonic() - t0
    closing = closing_note(figures)
    print(closing)
    print("wall time: %.1f min" % (wall / 60))
    if not q:
        Path(a.out).write_text(document(figures, closing, started, wall))
        print("wrote %s" % a.out)
    return 0


def closing_note(figures):
    lines = ["## Closing note: every figure against its target", "",
             "| figure | target | measured | verdict |", "|---|---|---|---|"]
    for f in figures:
        verdict = f.status or {True: "met", False: "**missed**", None: "not measured"}[f.met]
        lines.append("| %d. %s | %s | %s | %s |" % (f.number, f.name, f.target, f.verdict,
                                                     verdict))
    lines.append("")
    for f in figures:
        if f.limit:
            missed = not f.met or "missed" in (f.status or "")
            lines.append("- **%d. %s, %s**: %s" % (f.number, f.name, "what limits it" if missed
                                                    else "note", f.limit))
    lines.append("")
    return "\n".join(lines)


def document(figures, closing, started, wall):
    head = [
        "# Benchmarks",
        "",
        "Measured on %s UTC on %s with `make bench` (`.venv/bin/python -m tests.bench`): "
        "%.1f minutes for every figure." % (started.strftime("%Y-%m-%d %H:%M"), machine(),
                                                wall / 60),
        "",
        "Every comparison was measured side by side in this one run: the machine is shared and "
        "noisy, so read the ratios; absolute times are context. Devices are the real "
        "`firmware/` on the MicroPython unix port with an ESP8266-sized heap (`-X "
        "heapsize=38wK`, 64-bit), brokers and server on loopback; flash folders, the "
        "server's file store and database on %s. Benchmarks print what they "
        "measure and never fail on a number. One figure alone: `.venv/bin/python -m "
        "tests.bench.heap_floor` (or `peak_heap`, `push_latency`, `throughput`, "
        "`concurrent`, `module_heap`, `devices_page`), each with `--help`." % (
            "tmpfs (`/dev/shm`)" if common.workdir_on_tmpfs() else "the host's disk"),
        "",
        "This file is written by `make bench`; edit tests/bench/ instead.",
        "",
    ]
    body = []
    for f in figures:
        body.append(f.markdown())
        body.append("_(%.0f s)_\n" % f.seconds)
    return "\n".join(head + body + [closing])


if __name__ == "__main__":
    sys.exit(main())
