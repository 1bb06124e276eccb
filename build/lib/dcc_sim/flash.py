"""A simulated device's flash as a LittleFS image (SimDevice(flash_kb=N)).

The image is a file in the device's folder, formatted and read by MicroPython itself
(`vfs.VfsLfs2` over the block device class in shims/simflash.py, the one the device boots
with), so the host needs no LittleFS library. The device mounts it at boot (env SIM_FLASH);
these helpers run only while the device is stopped or between its writes (a test reads
back what a push left; LittleFS's copy-on-write leaves a consistent image after each commit).
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

IMAGE = "flash.img"
SHIMS_DIR = Path(__file__).resolve().parent / "shims"

# Runs on micropython with the job in env SIM_FLASH_JOB: {"spec", "mkfs", "put": {name: hex},
# "fill": name} then prints {name: hex} of every file ("dump") and the statvfs tuple.
_TOOL = r"""
import os, json
from binascii import hexlify, unhexlify
import simflash
with open(os.getenv("SIM_FLASH_JOB")) as f:
    job = json.load(f)
simflash.mount(job["spec"], job["mkfs"])
for name, data in job["put"].items():
    i = name.find("/")
    if i > 0:
        try:
            os.mkdir(name[:i])
        except OSError:
            pass
    with open(name, "wb") as f:
        f.write(unhexlify(data))
if job.get("fill"):  # appends, each one committed, smaller and smaller until not one byte fits
    for n in (4096, 512, 64, 8, 1):
        try:
            while True:
                with open(job["fill"], "ab") as f:
                    f.write(bytes(n))
        except OSError:
            pass
out = {}
def walk(d):
    for e in os.ilistdir(d or "."):
        p = d + e[0]
        if e[1] == 0x4000:
            walk(p + "/")
        elif job["dump"]:
            with open(p, "rb") as f:
                out[p] = hexlify(f.read()).decode()
        else:
            out[p] = ""
walk("")
print(json.dumps({"files": out, "statvfs": list(os.statvfs("."))}))
"""


class FlashError(RuntimeError):
    """MicroPython could not format, write or read a flash image."""


class FlashImage:
    """The LittleFS image of one device: `size_kb` KB in blocks of `block` bytes."""

    def __init__(self, folder, size_kb, block=4096, micropython=None):
        if block not in (512, 4096) or size_kb * 1024 % block:
            raise ValueError("flash_kb=%r is not a whole number of %d-byte blocks"
                             % (size_kb, block))
        self.path = Path(folder) / IMAGE
        self.blocks = size_kb * 1024 // block
        self.block = block
        self.micropython = micropython

    def exists(self):
        return self.path.exists()

    def spec(self):
        """The SIM_FLASH value for the boot (shims/simflash.py): image, blocks, block size."""
        return "%s:%d:%d" % (self.path.resolve(), self.blocks, self.block)

    def _run(self, put=None, mkfs=False, dump=True, fill=None):
        if self.micropython is None:
            from .launcher import find_micropython
            self.micropython = find_micropython()
        if mkfs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                f.truncate(self.blocks * self.block)
        job = {"spec": self.spec(), "mkfs": mkfs, "dump": dump, "fill": fill,
               "put": {n: bytes(d).hex() for n, d in (put or {}).items()}}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(job, f)
        try:
            env = dict(os.environ, MICROPYPATH=str(SHIMS_DIR), SIM_FLASH_JOB=f.name)
            out = subprocess.run([self.micropython, "-X", "heapsize=8M", "-c", _TOOL],
                                 capture_output=True, env=env, timeout=30)
        finally:
            os.unlink(f.name)
        if out.returncode:
            raise FlashError("flash image %s: %s" % (
                self.path, (out.stderr or out.stdout).decode(errors="replace").strip()))
        return json.loads(out.stdout)

    def seed(self, files, settings):
        """Format the image with the files of `files` (a folder) on first use; (re)write
        settings.json (bytes) every time, as the folder mode does."""
        put = {}
        if not self.exists():
            put = {p.name: p.read_bytes() for p in sorted(Path(files).iterdir())
                   if p.is_file()}
        put["settings.json"] = settings
        self._run(put, mkfs=not self.exists(), dump=False)

    def fill(self, name):
        """Append to file `name` until the flash has not one free block (as a data logger
        would); returns the free bytes left, 0."""
        return _free(self._run(dump=False, fill=name)["statvfs"])

    def files(self):
        """{name: bytes} of every file in the image, dot-files and sub-folders included."""
        return {n: bytes.fromhex(h) for n, h in sorted(self._run()["files"].items())}

    def names(self):
        return sorted(self._run(dump=False)["files"])

    def free(self):
        """Free bytes, as the firmware reads os.statvfs() (ota_receiver.free_space)."""
        return _free(self._run(dump=False)["statvfs"])


def _free(st):
    # A full LittleFS can count more used blocks than it has and wrap f_bavail: none free.
    return 0 if st[4] > st[2] else st[0] * st[4]
