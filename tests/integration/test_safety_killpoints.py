"""Power cuts at every step of a bundle update: the device always boots a complete old set or
a complete new set of files, and says which (`confirmed` or `rolled_back`, or no verdict and
the old files when the cut came before the commit). The bundle replaces main.py, adds a file
in a new sub-folder and deletes a file: each kind of step is cut.

The simulator SIGKILLs the device at a named step (machine.sim_step in the firmware) and
starts it again, as a power cut and the power coming back.
"""
import hashlib

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import OneShotSender
from tests.support.files import padded_main_py
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NEW_MAIN = padded_main_py(1200, tag="new")
BAD_MAIN = b"import runtime\nraise RuntimeError('bad release')\n"
EXTRA = b"# added by the bundle\nX = 1\n"
NOTES = b"deleted by the bundle\n"
NAMES = ("main.py", "lib/extra.py", "notes.txt")

# step -> (main.py pushed, the set the device must end with, its verdict on ota/status)
STEPS = {
    "download": (NEW_MAIN, "old", None),
    "verified": (NEW_MAIN, "old", None),
    "commit": (NEW_MAIN, "new", "confirmed"),
    "backup0": (NEW_MAIN, "new", "confirmed"),
    "place0": (NEW_MAIN, "new", "confirmed"),
    "place1": (NEW_MAIN, "new", "confirmed"),  # lib/extra.py is new: no backup1
    "backup2": (NEW_MAIN, "new", "confirmed"),  # notes.txt deleted: to its backup slot
    "rollback": (BAD_MAIN, "old", "rolled_back"),
    "restore0": (BAD_MAIN, "old", "rolled_back"),
    "restore1": (BAD_MAIN, "old", "rolled_back"),
    "restore2": (BAD_MAIN, "old", "rolled_back"),
}


def bundle(files):
    """files: [(name, bytes, or None to delete it)]."""
    head = "".join("- - %s\n" % n if d is None else
                   "%s %d %s\n" % (hashlib.sha1(d).hexdigest(), len(d), n)
                   for n, d in files).encode()
    return head, head + b"".join(d for _, d in files if d is not None)


@pytest.mark.parametrize("step", list(STEPS))
def test_a_power_cut_at_each_step_leaves_a_complete_set(step, mosquitto, watcher, tmp_path,
                                                        unique):
    main, end, verdict = STEPS[step]
    name = unique("cut")
    dev = SimDevice(name, tmp_path / name, broker_port=mosquitto.port, heartbeat=2,
                    settings={"confirm_after": 1}, kill_at=step)
    dev.seed()
    (dev.flash_dir / "notes.txt").write_bytes(NOTES)
    old = {"main.py": (dev.flash_dir / "main.py").read_bytes(), "notes.txt": NOTES}
    new = {"main.py": main, "lib/extra.py": EXTRA}
    with dev:
        mark = watcher.mark()
        watcher.wait_json(name + "/status", lambda d: d.get("online"), since=mark, timeout=20)
        head, stream = bundle([("main.py", main), ("lib/extra.py", EXTRA), ("notes.txt", None)])
        with OneShotSender(head, serve=stream) as tx:
            watcher.publish(name + "/OTA", tx.trigger("bundle", extra="|bundle=3"))
            wait_until(lambda: dev.cuts == [step], 30, what="the power cut at " + step)
            if verdict:
                st = watcher.wait_json(name + "/ota/status", lambda d: d.get(
                    "token") == tx.token and d.get("state") in ("confirmed", "rolled_back"),
                    timeout=40)
                assert st["state"] == verdict, st
                if verdict == "rolled_back":
                    assert st["reason"] == "RuntimeError: bad release", st
        # settled: back online, off probation, the journal cleared
        wait_until(lambda: not (dev.flash_dir / ".ota" / "journal.json").exists(), 30,
                   what="the journal to clear")
        mark = watcher.mark()
        hb = watcher.wait_json(name + "/status", lambda d: d.get("online"), since=mark,
                               timeout=20)
    assert "probation" not in hb
    want = old if end == "old" else new
    have = {n: (dev.flash_dir / n).read_bytes() for n in NAMES
            if (dev.flash_dir / n).exists()}
    assert have == want, (step, sorted(have))
    assert (dev.flash_dir / "lib").exists() == (end == "new")  # the folder goes with the file
    assert hb["files"]["main.py"] == hashlib.sha1(want["main.py"]).hexdigest()
    ota = dev.flash_dir / ".ota"
    assert sorted(p.name for p in ota.rglob("*") if p.is_file()) == []
    assert sorted(p.name for p in ota.rglob("*") if p.is_dir()) in ([], ["new", "old"])
    assert "Traceback" not in dev.log_text() or verdict == "rolled_back"
