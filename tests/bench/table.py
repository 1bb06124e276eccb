"""Benchmark figures as Markdown tables: min, median, max over repeated runs, and the machine."""
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


def spread(values, fmt="%.1f", unit=""):
    """[runs, min, median, max] cells for one row."""
    vals = sorted(values)
    if not vals:
        return ["0", "-", "-", "-"]
    cell = lambda v: (fmt % v) + (" " + unit if unit else "")
    return [str(len(vals)), cell(vals[0]), cell(statistics.median(vals)), cell(vals[-1])]


def median(values):
    return statistics.median(values) if values else float("nan")


class Figure:
    """One figure: a table, notes under it, and its verdict against the issue's target."""

    def __init__(self, number, name, title, target, header):
        self.number, self.name, self.title, self.target = number, name, title, target
        self.header = header
        self.rows = []
        self.notes = []
        self.met = None       # True, False, or None (not measured)
        self.verdict = ""     # the figure against its target, one sentence
        self.limit = ""       # what limits it, when missed (or what it rests on)
        self.status = None    # the verdict cell, when "met"/"missed" says too little

    def row(self, *cells):
        self.rows.append([str(c) for c in cells])

    def note(self, text):
        self.notes.append(text)

    def judge(self, met, verdict, limit="", status=None):
        self.met, self.verdict, self.limit, self.status = met, verdict, limit, status

    def markdown(self):
        lines = ["### %d. %s" % (self.number, self.title), "",
                 "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + ["- " + n for n in self.notes] + (["" ] if self.notes else [])
        lines += ["machine: " + machine(), ""]
        return "\n".join(lines)
