"""Template filters: sizes, times and hashes the way the pages show them."""
import time
from datetime import datetime

from .push.states import State, for_scripts


def size(n):
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024.0


def ago(ts, now=None):
    if ts is None:
        return "never"
    s = max(0, int((now or time.time()) - ts))
    if s < 60:
        return "%d s ago" % s
    if s < 3600:
        return "%d min ago" % (s // 60)
    if s < 86400:
        return "%d h ago" % (s // 3600)
    return "%d days ago" % (s // 86400)


def duration(s):
    if s is None:
        return "–"
    s = int(s)
    if s < 60:
        return "%d s" % s
    if s < 3600:
        return "%d min %d s" % (s // 60, s % 60)
    return "%d h %d min" % (s // 3600, s % 3600 // 60)


def elapsed(s):
    """Time since the first step of a push: '+4 ms', '+1.25 s'."""
    return "+%d ms" % round(s * 1000) if s < 1 else "+%.2f s" % s


def clock(ts):
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "–"


def init_app(app):
    # Push states for the templates (PushState.FAILED) and, as JSON in base.html's
    # data-push-states, for the page scripts: one enumeration, no copy in JS.
    app.context_processor(lambda: {"PushState": State, "push_states": for_scripts()})
    app.add_template_filter(size)
    app.add_template_filter(ago)
    app.add_template_filter(duration)
    app.add_template_filter(clock)
    app.add_template_filter(elapsed)
