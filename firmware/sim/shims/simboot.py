# Simulator boot: run boot.py then main.py from the flash (the cwd), as a board does.
#
# Flash image mode (SimDevice(flash_kb=N), env SIM_FLASH="<image>:<blocks>:<block size>"):
# the flash is a LittleFS file system in an image file, mounted with vfs.VfsLfs2 at MOUNT
# and made the cwd, so the firmware's relative paths, os.statvfs() and ENOSPC are those of a
# board's real file system. The image is formatted and seeded by the launcher
# (dcc_sim.flash), which imports this module for Flash and mount() (nothing runs at import).
import os

MOUNT = "/flash"  # not "/": SIM_CTL, a host folder, stays reachable for the watchdog shim
_IOCTL_SYNC = 3
_IOCTL_COUNT = 4
_IOCTL_SIZE = 5
_IOCTL_ERASE = 6


class Flash:
    # A block device over an image file: the extended interface (offset writes), as the
    # esp32/esp8266 flash partitions give VfsLfs2. Erase is a no-op: a file has no erase.

    def __init__(self, path, blocks, size=4096):
        self.f = open(path, "r+b")
        self.blocks = blocks
        self.size = size

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.size + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=0):
        self.f.seek(n * self.size + off)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == _IOCTL_COUNT:
            return self.blocks
        if op == _IOCTL_SIZE:
            return self.size
        if op == _IOCTL_SYNC:
            self.f.flush()
        return 0


def mount(spec, mkfs=False):
    # Mount the image of spec ("<image>:<blocks>:<block size>") at MOUNT and chdir there.
    import vfs

    path, blocks, size = spec.rsplit(":", 2)
    dev = Flash(path, int(blocks), int(size))
    if mkfs:
        vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), MOUNT)
    os.chdir(MOUNT)
    return dev


def _filler():
    # Another writer on the board (say a data logger) that fills the flash during an
    # update: with SIM_CTL/.sim_fill holding a step name, that update step (machine.sim_step)
    # first appends to .sim_fill.bin, a block at a time, until the flash is full. The free
    # space then shrinks after the firmware's pre-check, as it can on a real board.
    import machine

    step = machine.sim_step
    ctl = os.getenv("SIM_CTL") + "/.sim_fill"

    def sim_step(name):
        try:
            with open(ctl) as f:
                at = f.read().strip()
        except OSError:
            at = None
        if at == name:
            os.remove(ctl)  # once
            buf = bytes(4096)
            try:
                while True:  # each close commits a block: a full flash, not a lost file
                    with open(".sim_fill.bin", "ab") as f:
                        f.write(buf)
            except OSError:
                pass  # ENOSPC
            buf = None
        step(name)

    machine.sim_step = sim_step


def _flash():
    import sys

    spec = os.getenv("SIM_FLASH")
    if spec:
        mount(spec)
        # import the firmware from the image, not from the host folder that holds it
        ctl = os.getenv("SIM_CTL")
        if ctl in sys.path:
            sys.path[sys.path.index(ctl)] = MOUNT
        else:
            sys.path.append(MOUNT)
        _filler()


if __name__ == "__main__":
    _flash()
    for _f in ("boot.py", "main.py"):
        try:
            os.stat(_f)
        except OSError:
            continue
        execfile(_f)
