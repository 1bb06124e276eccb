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




def big_plugin_py(steps=40, terms=15, tag="v1"):
    """A plugin module (firmware/plugins.py's API) with `steps` small functions (lambdas:
    no name each to intern) of `terms` terms: its bytecode is small, but compiling it holds
    the parse tree of the whole module at once, which a small heap has no room for. Its
    state says which release loaded and what the functions computed, so a heartbeat shows
    that all of it ran."""
    lines = ["# a large plugin, release %s: the lamp's brightness curve, step by step" % tag,
             "RELEASE = %r" % tag, "", "STEPS = ("]
    for i in range(steps):
        lines.append("    lambda x: (%s) %% 65521," % " + ".join(
            "(x * %d + %d) %% %d" % (t % 7 + 2, i + t, 97 + t) for t in range(terms)))
    lines += [")", "", "",
              "def curve(x):", "    for step in STEPS:", "        x = step(x)", "    return x",
              "", "",
              "class Big:", "    name = 'big'", "",
              "    def state(self):",
              "        return {'release': RELEASE, 'curve': curve(1)}", "",
              "    def on_set(self, payload):", "        pass", "",
              "    def poll(self):", "        pass", "", "",
              "def create(ctx, cfg):", "    return Big()", ""]
    return "\n".join(lines).encode()
