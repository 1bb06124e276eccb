"""A push's record in SQLite: its row, its files and its timeline of timestamped steps."""
import time

FINAL = ("done", "failed", "unconfirmed")


def insert(db, device, items, force):
    """A new push in state `queued`; returns its id."""
    now = time.time()
    first = items[0]
    push_id = db.execute(
        "INSERT INTO pushes (device, file_sha256, target, nfiles, force, state, total, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (device, _sha256(first), first.target, len(items), int(force), "queued",
         sum(i.file.size for i in items if i.file), now, now)).lastrowid
    db.executemany("INSERT INTO push_files (push_id, position, file_sha256, target)"
                   " VALUES (?,?,?,?)",
                   [(push_id, n, _sha256(i), i.target) for n, i in enumerate(items)])
    step(db, push_id, "queued", ", ".join(_label(i) for i in items))
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
    now = time.time() if at is None else at
    db.execute("UPDATE pushes SET state = ?, updated_at = ? WHERE id = ?", (state, now, push_id))
    db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
               (push_id, now, state, detail))


def note(db, push_id, label, detail):
    """A timeline entry that does not change the push's state (a retry, a wait)."""
    now = time.time()
    db.execute("UPDATE pushes SET updated_at = ? WHERE id = ?", (now, push_id))
    db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
               (push_id, now, label, detail))


def progress(db, push_id, sent):
    db.execute("UPDATE pushes SET bytes_sent = ?, updated_at = ? WHERE id = ?",
               (sent, time.time(), push_id))


def finish(db, push_id, state, reason=None, detail=None):
    now = time.time()
    db.execute("UPDATE pushes SET state = ?, reason = ?, detail = ?, updated_at = ?,"
               " finished_at = ? WHERE id = ?", (state, reason, detail, now, now, push_id))
    text = "%s: %s" % (reason, detail) if reason and detail else (reason or detail)
    db.execute("INSERT INTO push_events (push_id, at, state, detail) VALUES (?,?,?,?)",
               (push_id, now, state, text))


def files_of(db, push_id):
    """[(file_sha256, target)] in stream order; file_sha256 None for a delete."""
    return [(r["file_sha256"], r["target"]) for r in db.execute(
        "SELECT file_sha256, target FROM push_files WHERE push_id = ? ORDER BY position",
        (push_id,))]


def find_pushes(db, device=None, state=None, ids=(), since=None, limit=50):
    """Pushes newest first, each with its files and its timeline."""
    where, args = [], []
    if device:
        where.append("p.device = ?")
        args.append(device)
    if state == "active":
        where.append("p.state NOT IN (%s)" % ",".join("?" * len(FINAL)))
        args += FINAL
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
        push.pop("token")  # a live one-time secret: never shown
        push["force"] = bool(push["force"])
        push["events"], push["files"] = [], []
        by_id[push["id"]] = push
    if by_id:
        marks = ",".join("?" * len(by_id))
        for e in db.execute("SELECT push_id, at, state, detail FROM push_events"
                            " WHERE push_id IN (%s) ORDER BY id" % marks, list(by_id)):
            by_id[e["push_id"]]["events"].append(
                {"at": e["at"], "state": e["state"], "detail": e["detail"]})
        for f in db.execute("SELECT pf.push_id, pf.target, pf.file_sha256, f.name, f.sha1, f.size"
                            " FROM push_files pf LEFT JOIN files f ON f.sha256 = pf.file_sha256"
                            " WHERE pf.push_id IN (%s) ORDER BY pf.push_id, pf.position" % marks,
                            list(by_id)):
            # a delete has no file: {"target", "delete": true}
            by_id[f["push_id"]]["files"].append(
                {"name": f["name"], "target": f["target"], "sha1": f["sha1"], "size": f["size"],
                 "delete": f["file_sha256"] is None})
    return list(by_id.values())


def get_push(db, push_id):
    found = find_pushes(db, ids=[push_id], limit=1)
    return found[0] if found else None
