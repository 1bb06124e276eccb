# Simulator flash image (SimDevice(flash_kb=N), env SIM_FLASH="<image>:<blocks>:<block size>"):
# a LittleFS file system in an image file, mounted with vfs.VfsLfs2 at /flash and made the
# cwd, so the firmware's relative paths, os.statvfs() and ENOSPC are those of a board's real
# file system. The boot imports this only in that mode (dcc_sim.launcher.FLASH_BOOT);
# dcc_sim.flash imports it to format, seed and read images with mount() (nothing runs at
# import).
import os


class Flash:
    # A block device over an image file: the extended interface (offset writes), as the
    # esp32/esp8266 flash partitions give VfsLfs2. Erase is a no-op: a file has no erase.

    def __init__(self, path, blocks, size):
        self.f = open(path, "r+b")
        self.n = blocks
        self.size = size

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.size + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=0):
        self.f.seek(n * self.size + off)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.size
        if op == 3:  # sync
            self.f.flush()
        return 0


def mount(spec, mkfs=False):
    # Mount the image of spec at /flash (not "/": SIM_CTL, a host folder, stays reachable
    # for the watchdog and sim_step) and chdir there.
    import vfs

    path, blocks, size = spec.rsplit(":", 2)
    dev = Flash(path, int(blocks), int(size))
    if mkfs:
        vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/flash")
    os.chdir("/flash")


def boot():
    # Mount SIM_FLASH and import the firmware from it, not from the host folder holding it.
    import sys

    mount(os.getenv("SIM_FLASH"))
    ctl = os.getenv("SIM_CTL")
    if ctl in sys.path:
        sys.path[sys.path.index(ctl)] = "/flash"
    else:
        sys.path.append("/flash")
