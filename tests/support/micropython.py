"""Running firmware code on the real MicroPython unix port, for the unit tests that compare it
with CPython: the code that runs on boards is what is tested."""
import json
import os
import subprocess

from dcc_sim.launcher import FIRMWARE_DIR, find_micropython


def run_cases(runner, cases, tmp_path, heap="38wK"):
    """Run `runner` (MicroPython source) with firmware/ on its path and a JSON file of `cases`
    as its argument; it prints one JSON line per case, returned decoded in order."""
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "runner.py").write_text(runner)
    env = dict(os.environ, MICROPYPATH=str(FIRMWARE_DIR))
    out = subprocess.run([find_micropython(), "-X", "heapsize=" + heap,
                          str(tmp_path / "runner.py"), str(tmp_path / "cases.json")],
                         capture_output=True, env=env, timeout=30, cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    return [json.loads(line) for line in out.stdout.splitlines()]
