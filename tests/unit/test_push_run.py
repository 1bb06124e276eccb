"""PushRun's steps that a real device reaches only by chance of timing: here events are posted
to a run by hand (unit tests; the integration tests run the same code against devices)."""
import threading
import types

from webapp.push import run as push_run
from webapp.push.run import PushFailed, PushRun
from webapp.transfer import TransferError


def a_run(token="t" * 32):
    service = types.SimpleNamespace(config={})
    run = PushRun(service, 1, "lamp1", [], False)
    run.token = token
    return run


def status(state, token, reason="", detail=""):
    return {"state": state, "token": token, "reason": reason, "detail": detail, "sha1": ""}


def test_a_broken_transfer_that_the_device_explains_a_moment_later_is_its_refusal():
    run = a_run()
    later = threading.Timer(0.3, run.post, ("device", status(
        "failed", run.token, "rejected", "journal.py needs force=1")))
    later.start()

    found = run._explained(TransferError("transfer broken", "after 0 of 36 bytes"))

    assert isinstance(found, PushFailed)
    assert (found.reason, found.detail) == ("rejected", "journal.py needs force=1")


def test_a_broken_transfer_nobody_explains_stays_transient(monkeypatch):
    monkeypatch.setattr(push_run, "_EXPLAIN", 0.2)
    run = a_run()
    run.post("device", status("failed", "another push's token", "rejected", "not ours"))
    broken = TransferError("transfer broken", "after 10 of 36 bytes")

    assert run._explained(broken) is broken  # tried again, as a transient failure
    assert run._explained(TransferError("no connection", "")).reason == "no connection"
