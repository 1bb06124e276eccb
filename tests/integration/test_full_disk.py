"""Issue 10, example 8: a full disk is a clear `no_space` (HTTP 507), a message on the page and
one line from the CLI, and nothing half-written is kept; the same for the database's disk.
The disks are real 200 KB tmpfs mounts in a mount namespace of this test's own
(tests/integration/full_disk.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def answers():
    out = subprocess.run(["unshare", "--map-root-user", "--mount", sys.executable, "-m",
                          "tests.integration.full_disk"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_api_answers_507_no_space_and_stores_nothing(answers):
    status, body = answers["api"]
    assert status == 507
    assert body["error"] == "no_space"
    assert body["message"].startswith("the file store (") and "is full" in body["message"]
    assert answers["stored"] == []  # not even ok.py, the small file sent with it
    assert answers["left_on_disk"] == []  # no temporary left behind


def test_the_page_says_so(answers):
    status, flashes = answers["page"]
    assert status == 200
    assert len(flashes) == 1 and flashes[0].startswith("Nothing was stored: the file store (")


def test_the_cli_says_so_in_one_line(answers):
    code, stderr = answers["cli"]
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot push: the file store ("), stderr


def test_a_full_database_disk_is_a_507_too(answers):
    status, body = answers["api_db"]
    assert status == 507
    assert body == {"error": "no_space", "message": "the database's disk is full: nothing was "
                                                    "stored; free some space and try again"}


def test_health_says_which_disk_is_full(answers):
    """Issue 12: /api/health tells running from working, and names what does not work."""
    status, body = answers["health_store"]
    assert (status, body["running"], body["checks"]["file_store"]) == (503, True, False)
    assert body["errors"]["file_store"].startswith("cannot write in ")
    assert body["checks"]["database"] is True
    status, body = answers["health_db"]
    assert (status, body["checks"]["database"]) == (503, False)
    assert body["checks"]["file_store"] is True
    # who asks cannot be told without the database: the public answer, no 507 nor 500
    assert "errors" not in body
