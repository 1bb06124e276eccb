"""Figure 6: the heap a large module needs as source and precompiled.

The smallest `-X heapsize=NwK` (whole wK) at which a bare MicroPython unix port imports a
large module (tests/support/files.py, big_plugin_py) and runs it: as big.py (the board
compiles it: the whole module's parse tree at once) and as big.mpy (mpy-cross compiled it on
the server: `ota push --mpy`). The same galloping search and repeats as figure 1, without the
runtime: the module's own cost on an empty heap.

Run alone: .venv/bin/python -m tests.bench.module_heap
"""
import argparse
import subprocess
import tempfile
from pathlib import Path

from dcc_sim.launcher import find_micropython
from webapp import board_tools

from tests.bench.heap_floor import ESP8266_WK, find_floor
from tests.bench.table import Figure
from tests.support.files import big_plugin_py

REPEATS = 5
CODE = "import big\nprint(big.create(None, {}).state())"


def imports(folder, heap_wk):
    """True when `import big` and its state() run in a heap of heap_wk, from `folder`."""
    out = subprocess.run([find_micropython(), "-X", "heapsize=%dwK" % heap_wk, "-c", CODE],
                         cwd=folder, capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and "'release'" in out.stdout


def floor(folder):
    found, _ = find_floor(lambda n: imports(folder, n), 16, lo_bound=2, hi_bound=512)
    while found is not None and not all(imports(folder, found) for _ in range(REPEATS)):
        found, _ = find_floor(lambda n: imports(folder, n), found + 1, lo_bound=found + 1,
                              hi_bound=512)
    return found


def run(log=print):
    fig = Figure(6, "module heap", "A large module's heap: compiled on the device or "
                 "precompiled on the server", "precompiled loads where source cannot compile",
                 ["module", "file size", "smallest heap that imports it",
                  "loads on an ESP8266 (38wK) beside the runtime?"])
    source = big_plugin_py()
    with tempfile.TemporaryDirectory(prefix="dcc-bench-module-") as tmp:
        py, mpy = Path(tmp) / "py", Path(tmp) / "mpy"
        py.mkdir()
        mpy.mkdir()
        (py / "big.py").write_bytes(source)
        try:
            compiled = board_tools.compile_source(source, "big.py")
        except board_tools.MpyCrossMissing:
            compiled = None
        floors = {"py": floor(py)}
        log("  module heap: big.py -> %swK" % floors["py"])
        if compiled is not None:
            (mpy / "big.mpy").write_bytes(compiled)
            floors["mpy"] = floor(mpy)
            log("  module heap: big.mpy -> %swK" % floors["mpy"])
    runtime = 21  # figure 1's precompiled floor: what the runtime itself holds, about
    for key, data in (("py", source), ("mpy", compiled)):
        if data is None:
            fig.row("big.mpy", "-", "not measured: mpy-cross is not installed", "-")
            continue
        wk = floors[key]
        fig.row("big.%s" % key, "%d bytes" % len(data), "%swK" % wk,
                "yes" if wk and wk + runtime <= ESP8266_WK else "no")
    fig.note("The module: %d lambdas of 15 terms each and a plugin class "
             "(tests/support/files.py, big_plugin_py); each floor passed %d more times; one "
             "wK less failed. A bare `micropython -X heapsize=NwK -c 'import big'` in the "
             "module's folder, 64-bit unix port: no runtime, no shims." % (40, REPEATS))
    fig.note("Beside the runtime: the floor plus about %dwK (figure 1's precompiled floor) "
             "against an ESP8266's 38wK; the integration test "
             "tests/integration/test_push_mpy.py pushes both to a simulated one." % runtime)
    met = "mpy" in floors and floors["mpy"] < floors["py"]
    fig.judge(met, "big.py %swK, big.mpy %s" % (floors["py"], "%swK" % floors["mpy"]
                                                 if "mpy" in floors else "not measured"))
    return fig


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(run().markdown())


if __name__ == "__main__":
    main()
