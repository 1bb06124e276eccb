# DCC-OTA bundles (docs/protocol.md, "Safe updates"): the manifest and the commit journal.
# ota_receiver imports this only for a bundle push (and drops it after a failed one): it
# reads the manifest through its own buffer, streams every file to .ota/new/<i> with its one
# transfer loop, then calls commit(). The renames are done by safeboot.py at the next boot
# (one code path for a commit and for its roll-forward after a power cut).
from ota_trigger import OTAError, bad_name, is_hex, protected

NEW = ".ota/new/"
JOURNAL = ".ota/journal.json"
MAX = 1024  # manifest bytes: it must fit the receiver's buffer


def step(name):
    # a named point where the simulator can cut the power (no-op on a board)
    import machine

    f = getattr(machine, "sim_step", None)
    if f:
        f(name)


def clean():
    # delete the temporary files of a push that did not commit
    import os

    try:
        for e in os.ilistdir(NEW[:-1]):
            os.remove(NEW + e[0])
    except OSError:
        pass


def start(t):
    # Ready the flash for bundle t: None, or why the trigger is malformed.
    import os

    if t.size > MAX:
        return "manifest over %d bytes" % MAX
    for d in (".ota", NEW[:-1], ".ota/old"):
        try:
            os.mkdir(d)
        except OSError:
            pass  # exists
    clean()
    return None


def parse_manifest(text, t, keyed):
    # [(sha1, size, name)] from the manifest text of bundle t; OTAError malformed/rejected.
    # keyed: the device has a key (see ota_trigger.protected).
    items = []
    for line in text.split("\n")[:-1]:
        p = line.split(" ")
        if len(p) != 3 or not is_hex(p[0], 40) or not p[1].isdigit() or len(p[1]) > 8:
            raise OTAError("malformed", "bad manifest line")
        name = p[2]
        why = bad_name(name) if name != "settings.json" else None
        if why:
            raise OTAError("malformed", "%s: %s" % (name, why))
        for x in items:
            if x[2] == name:
                raise OTAError("malformed", name + " named twice")
        why = protected(name, t, keyed)
        if why:
            raise OTAError("rejected", why)
        items.append((p[0], int(p[1]), name))
    if not text.endswith("\n") or len(items) != t.bundle:
        raise OTAError("malformed", "manifest does not list %d files" % t.bundle)
    return items


def read_manifest(s, mv, t, keyed):
    # Read bundle t's manifest from socket s into mv (the receiver's buffer), check its
    # SHA-1 and the free space for every file; returns parse_manifest()'s list.
    import hashlib
    from binascii import hexlify
    from ota_receiver import free_space

    got = 0
    while got < t.size:
        k = s.readinto(mv[got:t.size])
        if not k:
            raise OTAError("transfer broken", "EOF in the manifest")
        got += k
    if hexlify(hashlib.sha1(mv[:got]).digest()).decode() != t.sha1:
        raise OTAError("hash mismatch", "manifest")
    try:
        text = bytes(mv[:got]).decode()
    except UnicodeError:
        raise OTAError("malformed", "manifest is not UTF-8")
    items = parse_manifest(text, t, keyed)
    need = 0
    for x in items:
        need += x[1]
    bs, free = free_space()
    # every file may take a partly used block, and the journal a block or two
    if free is not None and need + (len(items) + 2) * bs > free:
        raise OTAError("no space", "need %d bytes, %d free" % (need, free))
    return items


def commit(t, items, extra):
    # Every file is verified in .ota/new: journal the commit for safeboot.py.
    import json
    import os

    step("verified")
    had = []
    for x in items:
        try:
            os.stat(x[2])
            had.append(1)
        except OSError:
            had.append(0)
    j = {"state": "commit", "token": t.token, "files": [x[2] for x in items], "had": had,
         "boots": 0}
    if extra:
        j.update(extra)
    # replace the journal atomically: a power cut leaves the old one or the new one
    with open(JOURNAL + ".tmp", "w") as f:
        json.dump(j, f)
    os.rename(JOURNAL + ".tmp", JOURNAL)
