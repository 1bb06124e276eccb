"""Printing benchmark figures as a table: min, median, max, and the machine it ran on."""
import os
import platform
import statistics


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, Python %s" % (cpu, os.cpu_count(), platform.python_version())


def row(label, values, unit="ms", scale=1000.0):
    vals = sorted(v * scale for v in values)
    return "| %s | %d | %.1f %s | %.1f %s | %.1f %s |" % (
        label, len(vals), vals[0], unit, statistics.median(vals), unit, vals[-1], unit)


def table(title, rows):
    lines = ["### " + title, "", "| measure | runs | min | median | max |",
             "|---|---|---|---|---|"] + rows + ["", "machine: " + machine(), ""]
    return "\n".join(lines)
