"""A push's states and the notes of its timeline: one enumeration for the service, the pages,
the API, the CLI and the page scripts (base.html hands `for_scripts()` to them in a data
attribute, so no script keeps a copy).

queued → [waiting] → trigger_sent → connected → transferring → sent → verified → rebooting
       → [online, on probation] → done
A push ends in one of FINAL: done, failed (with a reason and a detail) or unconfirmed (the
device has the bytes but sends no confirmation: the seed's firmware).
"""
import enum


class State(str, enum.Enum):
    """Where a push is: the `state` column of pushes, and a step of its timeline."""

    QUEUED = "queued"
    WAITING = "waiting"            # for the device to come online, or for its turn
    TRIGGER_SENT = "trigger_sent"
    CONNECTED = "connected"
    TRANSFERRING = "transferring"
    SENT = "sent"
    VERIFIED = "verified"
    REBOOTING = "rebooting"
    ONLINE = "online"              # back with the new files, on probation
    DONE = "done"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"

    __hash__ = str.__hash__  # "done" in FINAL: a row's plain string finds its member

    def __str__(self):
        return self.value

    @property
    def final(self):
        return self in FINAL


FINAL = frozenset({State.DONE, State.FAILED, State.UNCONFIRMED})
# The device has every byte: a CLI run without --wait stops following here.
DELIVERED = frozenset({State.SENT, State.VERIFIED, State.REBOOTING})
# Past the point of no return: the device confirms or rolls back by itself, so the push is not
# cancelled; a process that stops following it leaves it to the next one (Note.LEFT).
DEVICE_DECIDES = DELIVERED | {State.ONLINE}


# Two reasons a push fails for that other code tells apart from the device's own: its
# process stopped during it (a rollout puts the device back in line), and a person or a
# rollout cancelled it.
SERVER_STOPPED = "server stopped"
CANCELLED = "cancelled"


class Note(str, enum.Enum):
    """A timeline entry that is not a state: the push stays where it was."""

    RESUMED = "resumed"            # queued again after the server restarted
    RECONCILING = "reconciling"    # cut off by a restart: asking the device what it has
    RETRYING = "retrying"          # a transient failure, tried again after a pause
    HELD = "held"                  # another process pushes to the device, or it is on probation
    LEFT = "left"                  # its process stopped following it: the server finishes it

    __hash__ = str.__hash__  # "done" in FINAL: a row's plain string finds its member

    def __str__(self):
        return self.value


def final_values():
    """The final states as plain strings, for SQL parameters."""
    return tuple(sorted(s.value for s in FINAL))


# What lists of pushes filter by (pages, API): a final state, or "active" (not final yet).
LIST_FILTERS = final_values() + ("active",)


def for_scripts():
    """{"states": [...], "final": [...], "failed": "failed", "notes": [...]}: what the page
    scripts know of pushes."""
    return {"states": [s.value for s in State], "final": list(final_values()),
            "failed": State.FAILED.value, "notes": [n.value for n in Note],
            "device_decides": sorted(s.value for s in DEVICE_DECIDES)}
