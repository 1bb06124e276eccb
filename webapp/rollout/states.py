"""A rollout's phases and the steps of each device in it.

running → [waiting_go: the canary came back healthy, a person says go] → running → done,
or failed when more than the threshold of the devices pushed to since the last resume
failed.
A person may pause a running rollout (paused) and resume it; it stops by itself (stopped) when
the share of failed devices crosses its threshold, and may be resumed from there; cancelled
and done are final.

A device: pending → [waiting: offline] → pushing → done | failed; skipped (it runs the
release already), offline (still offline after the rollout's wait), cancelled (the rollout
was cancelled before its turn).
"""
import enum


class Phase(str, enum.Enum):
    """Where a rollout is: the `state` column of rollouts."""

    RUNNING = "running"
    WAITING_GO = "waiting_go"  # the canary came back healthy: a person says go
    PAUSED = "paused"          # by a person
    STOPPED = "stopped"        # by itself: the share of failed devices crossed the threshold
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"          # every device had its turn, and too many failed

    __hash__ = str.__hash__

    def __str__(self):
        return self.value


# What a person reads for each phase (pages, their scripts)
PHASE_LABELS = {Phase.RUNNING: "running", Phase.WAITING_GO: "waiting for a go",
                Phase.PAUSED: "paused", Phase.STOPPED: "stopped", Phase.CANCELLED: "cancelled",
                Phase.DONE: "done", Phase.FAILED: "failed"}
FINAL_PHASES = frozenset({Phase.CANCELLED, Phase.DONE, Phase.FAILED})
RESUMABLE = frozenset({Phase.WAITING_GO, Phase.PAUSED, Phase.STOPPED})


class Step(str, enum.Enum):
    """Where a device is in a rollout: the `state` column of rollout_devices."""

    PENDING = "pending"
    WAITING = "waiting"        # offline at its turn: pushed when it comes back
    PUSHING = "pushing"        # its push has not ended
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"        # it runs the release already
    OFFLINE = "offline"        # still offline after the rollout's wait
    CANCELLED = "cancelled"    # the rollout was cancelled before its turn

    __hash__ = str.__hash__

    def __str__(self):
        return self.value


FINAL_STEPS = frozenset({Step.DONE, Step.FAILED, Step.SKIPPED, Step.OFFLINE, Step.CANCELLED})


def for_scripts():
    """What the page scripts know of rollouts: the phases and their labels, the steps, which
    are final, which resume, the one that pauses (running) and the one a go ends
    (waiting_go)."""
    return {"phases": [p.value for p in Phase], "running": Phase.RUNNING.value,
            "waiting_go": Phase.WAITING_GO.value,
            "final_phases": sorted(p.value for p in FINAL_PHASES),
            "resumable": sorted(p.value for p in RESUMABLE), "steps": [s.value for s in Step],
            "final_steps": sorted(s.value for s in FINAL_STEPS),
            "labels": {p.value: label for p, label in PHASE_LABELS.items()}}
