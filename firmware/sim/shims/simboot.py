# Simulator boot: run boot.py then main.py from the flash folder (the cwd), as a board does.
import os

for _f in ("boot.py", "main.py"):
    try:
        os.stat(_f)
    except OSError:
        continue
    execfile(_f)
