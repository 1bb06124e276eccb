"""Issue 9, example 3, on the real firmware: with the broker reached over a global IPv6 address
and OTA_ADVERTISE_HOST unset, the trigger once carried that address, the device answered
`malformed: bad host` and every push failed. Now the guess picks an address the device
accepts, and the push is done.

It runs in a network namespace of its own (tests/integration/ipv6_broker.py), the only place
this machine may have a global IPv6 address that tests can use.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_broker_reached_over_global_ipv6_does_not_end_up_in_the_trigger():
    # a user namespace too: no root needed to own the network namespace
    out = subprocess.run(["unshare", "--map-root-user", "--net", sys.executable, "-m",
                          "tests.integration.ipv6_broker"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["local"] == "2001:db8::1"  # the server did reach the broker over IPv6
    assert (result["state"], result["reason"]) == ("done", None), result
    sent = next(e for e in result["events"] if e and e.startswith("bundle form"))
    assert "127.0.0.1:" in sent and "2001:db8" not in sent, sent
    assert "Traceback" not in out.stderr
