"""Waiting on conditions with a deadline (never a bare sleep)."""
import time


def wait_until(predicate, timeout=15.0, interval=0.05, what="the condition"):
    """Return predicate()'s first truthy value; raise TimeoutError naming `what` after timeout."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)
