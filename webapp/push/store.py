"""Every SQL statement on pushes, their files, their timelines and their device leases.

A push is a row of `pushes`, its files in stream order are rows of `push_files` (a NULL
file_sha256 is a delete) and its timeline is `push_events`: each row either a state entered
(`state`) or a note (`note`: states.Note), never both. The service, the pages, the API and
the CLI read and write pushes only through these functions.

Leases: at most one push per device talks to it, across every process sharing the
database. A push holds its device while `lease_until` (a Unix time) is ahead; its process
renews it every few seconds and the end of the push clears it, so a killed process frees the
device when the lease runs out (LEASE_SECONDS), or at once when the taker sees on this host
that the owner's process is gone.
"""
import logging
import time

from .states import FINAL, Note, State, final_values

log = logging.getLogger("webapp.push")  # one line per timeline entry: "push 12 lamp-hall: sent"
LEASE_SECONDS = 20.0
_FINAL = final_values()
_NOT_FINAL = "state NOT IN (%s)" % ",".join("?" * len(_FINAL))


def insert(db, device, items, force, owner):
    """A new push of `items` (manifest.Item) to `device`, in state queued, run by `owner`
    (process_id()); returns its id."""
    now = time.time()
    first = items[0]
    push_id = db.execute(
        "INSERT INTO pushes (device, file_sha256, target, nfiles, force, state, total, created_at,"
        " updated_at, owner) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (device, _sha256(first), first.target, len(items), int(force), State.QUEUED.value,
         sum(i.file.size for i in items if i.file), now, now, owner)).lastrowid
    db.executemany("INSERT INTO push_files (push_id, position, file_sha256, target)"
                   " VALUES (?,?,?,?)",
                   [(push_id, n, _sha256(i), i.target) for n, i in enumerate(items)])
    step(db, push_id, State.QUEUED, ", ".join(_label(i) for i in items))
    return push_id


def _sha256(item):
    return item.file.sha256 if item.file else None  # None: a delete


def _label(item):
    if item.file is None:
        return "delete " + item.target
    if item.target == item.file.name:
        return item.target
    return "%s as %s" % (item.file.name, item.target)


def step(db, push_id, state, detail=None, at=None):
    """The push enters `state` (State) at `at` (Unix time, default now)."""
    now = time.time() if at is None else at
    state = State(state).value
    db.execute("UPDATE pushes SET state = ?, updated_at = ? WHERE id = ?", (state, now, push_id))
    db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
               (push_id, now, state, detail))
    _log(db, logging.INFO, push_id, state, detail)


def _log(db, level, push_id, what, detail):
    """The server's log follows every push: its id, its device and the entry."""
    if log.isEnabledFor(level):
        row = db.execute("SELECT device FROM pushes WHERE id = ?", (push_id,)).fetchone()
        log.log(level, "push %d %s: %s%s", push_id, row[0] if row else "?", what,
                " (%s)" % detail if detail else "")


def note(db, push_id, what, detail):
    """A timeline entry (Note) that leaves the push's state as it is."""
    now = time.time()
    db.execute("UPDATE pushes SET updated_at = ? WHERE id = ?", (now, push_id))
    db.execute("INSERT INTO push_events (push_id, at, note, detail) VALUES (?,?,?,?)",
               (push_id, now, Note(what).value, detail))
    _log(db, logging.INFO, push_id, Note(what).value, detail)


def progress(db, push_id, sent):
    """`sent` bytes of the push have reached the device."""
    db.execute("UPDATE pushes SET bytes_sent = ?, updated_at = ? WHERE id = ?",
               (sent, time.time(), push_id))


def attempt(db, push_id, number):
    db.execute("UPDATE pushes SET attempt = ? WHERE id = ?", (number, push_id))


def negotiated(db, push_id, form, token):
    """The trigger's form ('legacy', 'extended', 'bundle') and the attempt's one-time token."""
    db.execute("UPDATE pushes SET form = ?, token = ? WHERE id = ?", (form, token, push_id))


def finish(db, push_id, state, reason=None, detail=None):
    """The push ends in `state` (one of FINAL); its device lease, if it held one, is freed."""
    state = State(state)
    if state not in FINAL:
        raise ValueError("%s is not a final state" % state)
    now = time.time()
    db.execute("UPDATE pushes SET state = ?, reason = ?, detail = ?, updated_at = ?,"
               " finished_at = ?, lease_until = NULL WHERE id = ?",
               (state.value, reason, detail, now, now, push_id))
    text = "%s: %s" % (reason, detail) if reason and detail else (reason or detail)
    db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
               (push_id, now, state.value, text))
    _log(db, logging.WARNING if state == State.FAILED else logging.INFO, push_id, state.value,
         text)


def files_of(db, push_id):
    """[(file_sha256, target)] in stream order; file_sha256 None for a delete."""
    return [(r["file_sha256"], r["target"]) for r in db.execute(
        "SELECT file_sha256, target FROM push_files WHERE push_id = ? ORDER BY position",
        (push_id,))]


def head(db, push_id):
    """The push's row (device, state, reason, detail, force, created_at, owner...) or None.
    Its token is in it: not for showing."""
    return db.execute("SELECT * FROM pushes WHERE id = ?", (push_id,)).fetchone()


def unfinished(db):
    """Rows of every push not final, oldest first."""
    return db.execute("SELECT * FROM pushes WHERE %s ORDER BY id" % _NOT_FINAL, _FINAL).fetchall()


def adopt(db, push_id, owner, was):
    """Take over a push whose owner `was` is gone; False if another process took it first."""
    return db.execute("UPDATE pushes SET owner = ?, lease_until = NULL WHERE id = ? AND"
                      " owner IS ?", (owner, push_id, was)).rowcount == 1


def events_after(db, push_id, after=0):
    """Timeline rows with an id above `after`, in order: (id, at, label, kind, detail)."""
    return [(e["id"], e["at"], e["state"] or e["note"], "state" if e["state"] else "note",
             e["detail"]) for e in db.execute(
        "SELECT id, at, state, note, detail FROM push_events WHERE push_id = ? AND id > ?"
        " ORDER BY id", (push_id, after))]


def pushed_devices(db):
    """Every device name a push was ever made to, sorted."""
    return [r[0] for r in db.execute("SELECT DISTINCT device FROM pushes ORDER BY 1")]


# -- leases -------------------------------------------------------------------------------

def take_lease(db, push_id, device, now=None):
    """Hold `device` for push_id unless another push holds it: None when taken (or already
    held), else the holding push's row (id, owner, lease_until)."""
    now = time.time() if now is None else now
    # one statement: SQLite runs it under its write lock, so two processes cannot both win
    won = db.execute(
        "UPDATE pushes SET lease_until = ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM pushes"
        " WHERE device = ? AND id != ? AND lease_until > ?)",
        (now + LEASE_SECONDS, push_id, device, push_id, now)).rowcount
    if won:
        return None
    return db.execute("SELECT id, owner, lease_until FROM pushes WHERE device = ? AND id != ?"
                      " AND lease_until > ? ORDER BY id LIMIT 1",
                      (device, push_id, now)).fetchone()


def break_lease(db, push_id, owner):
    """Free the lease of push_id if `owner` still holds it (its process is gone)."""
    db.execute("UPDATE pushes SET lease_until = NULL WHERE id = ? AND owner IS ?",
               (push_id, owner))


def renew_leases(db, owner, push_ids, now=None):
    """The leases of `push_ids` that `owner` holds run LEASE_SECONDS from now; returns how
    many. (Only the runs still alive: a push whose end could not be written lets go.)"""
    if not push_ids:
        return 0
    now = time.time() if now is None else now
    return db.execute("UPDATE pushes SET lease_until = ? WHERE owner = ? AND lease_until"
                      " IS NOT NULL AND id IN (%s)" % ",".join("?" * len(push_ids)),
                      [now + LEASE_SECONDS, owner] + list(push_ids)).rowcount


def request_cancel(db, push_id, detail):
    """Ask the process running push_id to cancel it (it looks every second); False if the
    push is final."""
    return db.execute("UPDATE pushes SET cancel_request = ? WHERE id = ? AND " + _NOT_FINAL,
                      [detail, push_id] + list(_FINAL)).rowcount == 1


def cancel_requests(db, owner):
    """[(push id, detail)] of the cancels asked of `owner`'s pushes that are not final."""
    return [(r["id"], r["cancel_request"]) for r in db.execute(
        "SELECT id, cancel_request FROM pushes WHERE owner = ? AND cancel_request IS NOT NULL"
        " AND " + _NOT_FINAL, [owner] + list(_FINAL))]


# -- reading for pages, the API and the CLI -----------------------------------------------

def find_pushes(db, device=None, state=None, ids=(), since=None, limit=50):
    """Pushes newest first, each a dict of its row (never its token) with "files" [{name,
    target, sha1, size, delete}] and "events" [{at, state, kind, detail}]: `state` is the
    state entered or the note's label, `kind` says which ("state" or "note").

    `state` filters by a state, or "active" for every push not final; `since` (Unix time)
    keeps pushes changed after it (the live pages' cursor)."""
    where, args = [], []
    if device:
        where.append("p.device = ?")
        args.append(device)
    if state == "active":
        where.append("p." + _NOT_FINAL)
        args += _FINAL
    elif state:
        where.append("p.state = ?")
        args.append(state)
    if ids:
        where.append("p.id IN (%s)" % ",".join("?" * len(ids)))
        args += list(ids)
    if since is not None:
        where.append("p.updated_at > ?")
        args.append(since)
    rows = db.execute(
        "SELECT p.*, f.name AS file_name, f.sha1 AS file_sha1 FROM pushes p"
        " LEFT JOIN files f ON f.sha256 = p.file_sha256"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY p.id DESC LIMIT ?", args + [limit]).fetchall()
    by_id = {}
    for row in rows:
        push = dict(row)
        for private in ("token", "owner", "lease_until", "cancel_request"):  # a secret; bookkeeping
            push.pop(private)
        push["force"] = bool(push["force"])
        push["events"], push["files"] = [], []
        by_id[push["id"]] = push
    if by_id:
        marks = ",".join("?" * len(by_id))
        for e in db.execute("SELECT push_id, at, state, note, detail FROM push_events"
                            " WHERE push_id IN (%s) ORDER BY id" % marks, list(by_id)):
            by_id[e["push_id"]]["events"].append(
                {"at": e["at"], "state": e["state"] or e["note"],
                 "kind": "state" if e["state"] else "note", "detail": e["detail"]})
        for f in db.execute("SELECT pf.push_id, pf.target, pf.file_sha256, f.name, f.sha1, f.size"
                            " FROM push_files pf LEFT JOIN files f ON f.sha256 = pf.file_sha256"
                            " WHERE pf.push_id IN (%s) ORDER BY pf.push_id, pf.position" % marks,
                            list(by_id)):
            by_id[f["push_id"]]["files"].append(
                {"name": f["name"], "target": f["target"], "sha1": f["sha1"], "size": f["size"],
                 "delete": f["file_sha256"] is None})
    return list(by_id.values())


def get_push(db, push_id):
    """One push as find_pushes() shows it, or None."""
    found = find_pushes(db, ids=[push_id], limit=1)
    return found[0] if found else None
