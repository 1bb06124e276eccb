# Simulator boot (`micropython -m simboot`): run boot.py then main.py from the flash (the
# cwd), as a board does, after mounting the flash image when env SIM_FLASH names one
# (simflash). The firmware runs in this module's globals (execfile) for as long as the device
# runs, so they are kept to `os` and `_f`.
import os

if os.getenv("SIM_FLASH"):
    import simflash

    simflash.boot()
    del simflash
for _f in ("boot.py", "main.py"):
    try:
        os.stat(_f)
    except OSError:
        continue
    execfile(_f)
