# The work of machine.sim_step when a test may have armed it (a power cut; on a flash image,
# a filler), imported by the machine shim only then: an update on a plain flash folder with
# no power cut set pays no heap for it.
import os
import time


def sim_step(name):
    # A named step of an update (a no-op on a board, which has no machine.sim_step).
    # Flash image only: with SIM_CTL/.sim_fill holding this name, another writer on the board
    # (a data logger, say) first fills the flash, so that the free space shrinks after the
    # firmware's pre-check, as it can on a real board.
    # With env SIM_KILL_AT equal to name the process prints a marker and blocks; the launcher
    # SIGKILLs it there (a power cut at exactly that step).
    if os.getenv("SIM_FLASH"):
        p = os.getenv("SIM_CTL") + "/.sim_fill"
        try:
            with open(p) as f:
                at = f.read().strip()
        except OSError:
            at = None
        if at == name:
            os.remove(p)  # once
            buf = bytes(4096)
            try:
                while True:  # each close commits a block: a full flash, not a lost file
                    with open(".sim_fill.bin", "ab") as f:
                        f.write(buf)
            except OSError:
                pass  # ENOSPC
    if os.getenv("SIM_KILL_AT") == name:
        print("[sim-step]", name)
        while True:
            time.sleep(1)
