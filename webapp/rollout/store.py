"""Every SQL statement on rollouts and their devices (tables rollouts, rollout_devices)."""
import time
from dataclasses import dataclass

from ..db import transaction
from .states import FINAL_PHASES, FINAL_STEPS, Phase, Step


@dataclass(frozen=True)
class Settings:
    """How a rollout goes: `canary` devices first (0: none), then waves of `wave_size`, at
    most `concurrency` pushes at once; it stops when more than `threshold` (0 to 1) of the
    devices decided since its start or last resume failed; `auto_continue` goes on after a
    healthy canary without a person's go; a device offline at its turn is waited for
    `offline_wait` seconds."""

    canary: int = 1
    wave_size: int = 10
    concurrency: int = 4
    threshold: float = 0.2
    auto_continue: bool = False
    offline_wait: float = 24 * 3600.0


def insert(db, release_id, settings, waves, skipped):
    """A new running rollout: `waves` is [[device, ...], ...] (wave 0 the canary), `skipped`
    the devices that run the release already. Returns its id."""
    now = time.time()
    s = settings
    with transaction(db):
        rollout_id = db.execute(
            "INSERT INTO rollouts (release_id, canary, wave_size, concurrency, threshold,"
            " auto_continue, offline_wait, state, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (release_id, s.canary, s.wave_size, s.concurrency, s.threshold,
             int(s.auto_continue), s.offline_wait, Phase.RUNNING.value, now, now)).lastrowid
        rows = [(rollout_id, device, wave, position, Step.PENDING.value, None, now)
                for position, (wave, device) in enumerate(
                    (w, d) for w, devices in enumerate(waves) for d in devices)]
        rows += [(rollout_id, device, None, len(rows) + i, Step.SKIPPED.value,
                  "runs the release already", now) for i, device in enumerate(skipped)]
        db.executemany("INSERT INTO rollout_devices (rollout_id, device, wave, position, state,"
                       " detail, updated_at) VALUES (?,?,?,?,?,?,?)", rows)
    return rollout_id


def busy_devices(db, devices):
    """[(device, rollout id)] of `devices` that a rollout not ended has yet to finish."""
    found = []
    devices = list(devices)
    for i in range(0, len(devices), 500):
        chunk = devices[i:i + 500]
        found += [tuple(r) for r in db.execute(
            "SELECT d.device, d.rollout_id FROM rollout_devices d JOIN rollouts r ON"
            " r.id = d.rollout_id WHERE r.finished_at IS NULL AND d.state IN (?, ?, ?)"
            " AND d.device IN (%s) ORDER BY d.device" % ",".join("?" * len(chunk)),
            [Step.PENDING.value, Step.WAITING.value, Step.PUSHING.value] + chunk)]
    return found


def head(db, rollout_id):
    """The rollouts row (sqlite3.Row) or None."""
    return db.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()


def devices(db, rollout_id):
    """Its rollout_devices rows in order (wave, position)."""
    return db.execute("SELECT * FROM rollout_devices WHERE rollout_id = ?"
                      " ORDER BY wave IS NULL, wave, position", (rollout_id,)).fetchall()


def to_follow(db):
    """The ids of rollouts not final, and of final ones with a push still going."""
    return [r[0] for r in db.execute(
        "SELECT id FROM rollouts WHERE finished_at IS NULL UNION SELECT rollout_id FROM"
        " rollout_devices WHERE state = ? ORDER BY 1", (Step.PUSHING.value,))]


def listing(db, limit=100):
    """The newest rollouts with their release's name and the count of devices per step."""
    rows = db.execute("SELECT r.*, rel.name AS release FROM rollouts r JOIN releases rel ON"
                      " rel.id = r.release_id ORDER BY r.id DESC LIMIT ?", (limit,)).fetchall()
    counts = {row["id"]: {} for row in rows}
    if rows:  # one query for all of them (the list page asks every second)
        for rollout_id, state, n in db.execute(
                "SELECT rollout_id, state, COUNT(*) FROM rollout_devices WHERE rollout_id"
                " >= ? GROUP BY rollout_id, state", (rows[-1]["id"],)):
            if rollout_id in counts:
                counts[rollout_id][state] = n
    return [(row, counts[row["id"]]) for row in rows]


def set_phase(db, rollout_id, phase, reason=None, expect=None, **columns):
    """Move a rollout to `phase` (with `reason`, and other columns such as base_done); with
    `expect`, only from one of those phases. Returns whether it moved."""
    now = time.time()
    sets = ["state = ?", "reason = ?", "updated_at = ?"]
    args = [phase.value, reason, now]
    if phase in FINAL_PHASES:
        sets.append("finished_at = ?")
        args.append(now)
    for name, value in columns.items():
        assert name in ("base_done", "base_failed", "canary_passed"), name
        sets.append("%s = ?" % name)
        args.append(value)
    where = "id = ?"
    args.append(rollout_id)
    if expect:
        where += " AND state IN (%s)" % ",".join("?" * len(expect))
        args += [p.value for p in expect]
    return db.execute("UPDATE rollouts SET %s WHERE %s" % (", ".join(sets), where),
                      args).rowcount == 1


def touch(db, rollout_id):
    db.execute("UPDATE rollouts SET updated_at = ? WHERE id = ?", (time.time(), rollout_id))


def set_step(db, rollout_id, device, step, detail=None, push_id=None, waiting_since=None):
    """Move one device of a rollout to `step`; the rollout's updated_at moves too (the live
    page's cursor)."""
    now = time.time()
    db.execute("UPDATE rollout_devices SET state = ?, detail = ?, push_id = COALESCE(?, push_id),"
               " waiting_since = ?, updated_at = ? WHERE rollout_id = ? AND device = ?",
               (step.value, detail, push_id, waiting_since, now, rollout_id, device))
    touch(db, rollout_id)


def end_pending(db, rollout_id, step, detail):
    """Every device not yet pushing nor final goes to `step` (a cancel)."""
    db.execute("UPDATE rollout_devices SET state = ?, detail = ?, updated_at = ? WHERE"
               " rollout_id = ? AND state IN (?, ?)",
               (step.value, detail, time.time(), rollout_id, Step.PENDING.value,
                Step.WAITING.value))


def final_steps():
    return tuple(sorted(s.value for s in FINAL_STEPS))
