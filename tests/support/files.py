"""Test payloads that are real files a device can run."""
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def padded_main_py(size, tag="v2"):
    """The firmware's own main.py plus comment lines up to `size` bytes: a main.py that boots."""
    head = (FIRMWARE / "main.py").read_bytes().rstrip(b"\n") + b"\n# release %s\n" % tag.encode()
    line = b"# night lamp: keep the built-in LED off, the relay on the button.......\n"
    body = head
    while len(body) + len(line) <= size:
        body += line
    return body + b"#" * (size - len(body) - 1) + b"\n"
