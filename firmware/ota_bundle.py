# DCC-OTA bundles (docs/protocol.md, "Safe updates"): the manifest and the commit journal.
# ota_receiver imports this only for a bundle push (ota_push drops it, and journal.py, after
# a failed one): it reads the manifest through its own buffer, streams every file to
# NEW/<i> with its one transfer loop, then calls commit(). The renames (and the deletes) are
# done by safeboot.py at the next boot (one code path for a commit and for its roll-forward
# after a power cut).
# A manifest is checked against the flash before one byte is written: a name that is a
# folder here, or under a name that is a file here, is rejected (a rename could never
# place it).
from journal import NEW, OLD, clear, step, write  # NEW and step: the receiver's too
from ota_trigger import OTAError, bad_name, is_hex, protected

MAX = 1024  # manifest bytes: it must fit the receiver's buffer


def clean():
    # delete the temporary files of a push that did not commit, and any backup left over
    clear(NEW)
    clear(OLD)


def start(t):
    # Ready the flash for bundle t: None, or why the trigger is malformed.
    import os

    if t.size > MAX:
        return "manifest over %d bytes" % MAX
    for d in (".ota", NEW, OLD):
        try:
            os.mkdir(d)
        except OSError:
            pass  # exists
    clean()
    return None


def _kind(p):
    # 0x4000 a folder, 0x8000 a file, 0 nothing at path p
    import os

    try:
        return os.stat(p)[0] & 0xC000
    except OSError:
        return 0


def _fits(name, rm, t, keyed):
    # Why name cannot be written (rm: deleted) on this flash, or None. A delete of code the
    # runtime runs on (a module it has loaded, main.py, startup) needs force=1, as a replace
    # of the safe-boot code does (ota_trigger.protected).
    import sys

    why = protected(name, t, keyed)
    if why:
        return why
    k = _kind(name)
    if k == 0x4000:
        return name + " is a folder on the device"
    i = name.find("/")
    if i > 0 and _kind(name[:i]) == 0x8000:
        return name[:i] + " is a file on the device"
    m = name[:-3] if name[-3:] == ".py" else name[:-4] if name[-4:] == ".mpy" else ""
    if rm and k and t.kv.get("force") != "1" and (
            m in sys.modules or m in ("main", "startup", "ota_bundle", "ota_verdict")):
        return name + " is the device's runtime: deleting it needs force=1"
    return None


def parse_manifest(text, t, keyed):
    # [(sha1, size, name)] from the manifest text of bundle t, sha1 "-" and size 0 for a
    # delete; OTAError malformed/rejected. keyed: the device has a key (see
    # ota_trigger.protected).
    items = []
    for line in text.split("\n")[:-1]:
        p = line.split(" ")
        rm = len(p) == 3 and p[0] == "-" and p[1] == "-"
        if len(p) != 3 or not (rm or is_hex(p[0], 40) and p[1].isdigit() and len(p[1]) < 9):
            raise OTAError("malformed", "bad manifest line")
        name = p[2]
        why = bad_name(name) if name != "settings.json" else None
        if why:
            raise OTAError("malformed", "%s: %s" % (name, why))
        for x in items:
            if x[2] == name:
                raise OTAError("malformed", name + " named twice")
            if x[2].startswith(name + "/") or name.startswith(x[2] + "/"):
                raise OTAError("malformed", "%s and %s: a file and a folder" % (x[2], name))
        why = _fits(name, rm, t, keyed)
        if why:
            raise OTAError("rejected", why)
        items.append((p[0], 0 if rm else int(p[1]), name))
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
    need = n = 0
    for x in items:
        if x[0] != "-":
            need += x[1]
            n += 1
    bs, free = free_space()
    # every file written may take a partly used block, and the journal a block or two; a
    # delete needs no room beyond the journal (on a full flash it may be the way out)
    if n and free is not None and need + (n + 2) * bs > free:
        raise OTAError("no space", "need %d bytes, %d free" % (need, free))
    if not _kind(OLD):  # no room even for the backup slot's folder
        raise OTAError("no space", "cannot make " + OLD)
    return items


def commit(t, items, extra):
    # Every file is verified in NEW: journal the commit for safeboot.py.
    step("verified")
    had = []  # per file: 0 new to the flash, 1 replaced, 2 deleted
    for x in items:
        had.append(2 if x[0] == "-" else 1 if _kind(x[2]) else 0)
    j = {"state": "commit", "token": t.token, "files": [x[2] for x in items], "had": had,
         "boots": 0}
    if extra:
        j.update(extra)
    write(j)  # atomically: a power cut leaves the old journal or the new one
