"""Content-addressed file store: bytes on disk under their SHA-256, metadata in SQLite."""
import errno
import hashlib
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass

from .names import check_display_name

_CHUNK = 64 * 1024


class FileTooLarge(Exception):
    """The upload is larger than OTA_MAX_UPLOAD."""


class NoSpace(Exception):
    """The disk of the file store, or of the database, is full; nothing was stored."""


class FileInUse(Exception):
    """A release holds the file: it stays while the release does."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    sha1: str
    size: int
    name: str
    uploaded_at: float

    @classmethod
    def from_row(cls, row):
        return cls(row["sha256"], row["sha1"], row["size"], row["name"], row["uploaded_at"])


class FileStore:
    def __init__(self, root, max_size):
        self.root = root
        self.max_size = max_size
        os.makedirs(root, exist_ok=True)

    def path(self, sha256):
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256: %r" % sha256)
        return os.path.join(self.root, sha256)

    def save(self, db, stream, name):
        """Stream `stream` to disk while hashing it; the same bytes are stored once.

        `name` is only shown to people (checked by check_display_name): the bytes are found by
        their hash, so a name never becomes a path here. Returns the StoredFile (the first
        upload's row if it existed). FileTooLarge over max_size; NoSpace on a full disk.
        """
        return self.save_all(db, [(stream, name)])[0]

    def save_all(self, db, uploads):
        """Store every (stream, name) of one request, or none of them: every name is checked
        and every file received to a temporary first, then all go in at once. Returns the
        StoredFiles in order. BadName, FileTooLarge, NoSpace: nothing was stored."""
        for _, name in uploads:
            check_display_name(name)
        received = []
        try:
            for stream, name in uploads:
                try:
                    received.append(self._receive(stream))
                except FileTooLarge:
                    raise FileTooLarge("%s is larger than %d bytes (OTA_MAX_UPLOAD)"
                                       % (name, self.max_size)) from None
            self._record(db, received, [name for _, name in uploads])
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpace("the file store (%s) is full" % self.root) from None
            raise
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise NoSpace("the database's disk is full") from None
            raise
        finally:
            for tmp, *_ in received:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return [self.get(db, r[2]) for r in received]

    def _record(self, db, received, names):
        # the bytes into place and the rows in, as one transaction: a row that does not
        # commit takes the bytes it brought with it
        now = time.time()
        placed = []  # hashes whose bytes are new on disk
        db.execute("BEGIN IMMEDIATE")
        try:
            for (tmp, sha1, digest, size), name in zip(received, names):
                fresh = self.get(db, digest, deleted=True) is None
                os.replace(tmp, self.path(digest))
                if fresh:
                    placed.append(digest)
                # A file deleted before comes back as new: same row, fresh name and date.
                db.execute(
                    "INSERT INTO files (sha256, sha1, size, name, uploaded_at) VALUES (?,?,?,?,?)"
                    " ON CONFLICT (sha256) DO UPDATE SET name = excluded.name,"
                    " uploaded_at = excluded.uploaded_at, deleted_at = NULL"
                    " WHERE files.deleted_at IS NOT NULL",
                    (digest, sha1, size, name, now),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            for digest in placed:
                os.unlink(self.path(digest))
            raise

    def _receive(self, stream):
        """Stream to a temporary file while hashing: (path, sha1 hex, sha256 hex, size)."""
        sha1, sha256, size = hashlib.sha1(), hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_size:
                        raise FileTooLarge("the file is larger than %d bytes" % self.max_size)
                    sha1.update(chunk)
                    sha256.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp, sha1.hexdigest(), sha256.hexdigest(), size

    def get(self, db, sha256, deleted=False):
        row = db.execute("SELECT * FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None or (row["deleted_at"] is not None and not deleted):
            return None
        return StoredFile.from_row(row)

    def find(self, db, ref):
        """A file by full SHA-256, a unique hash prefix (either hash), or its newest name."""
        ref = ref.strip()
        digest = ref.lower()
        rows = []
        if len(digest) >= 6 and all(c in "0123456789abcdef" for c in digest):
            rows = db.execute(
                "SELECT * FROM files WHERE (sha256 LIKE ? OR sha1 LIKE ?) AND deleted_at IS NULL",
                (digest + "%", digest + "%")
            ).fetchall()
        if not rows:
            rows = db.execute(
                "SELECT * FROM files WHERE name = ? AND deleted_at IS NULL"
                " ORDER BY uploaded_at DESC LIMIT 1", (ref,)
            ).fetchall()
        return StoredFile.from_row(rows[0]) if len(rows) == 1 else None

    def all(self, db):
        rows = db.execute("SELECT * FROM files WHERE deleted_at IS NULL"
                          " ORDER BY uploaded_at DESC").fetchall()
        return [StoredFile.from_row(r) for r in rows]

    def delete(self, db, sha256):
        """Remove the bytes; the row stays (marked deleted) for the push history. FileInUse
        when a release holds the file (a release never changes)."""
        held = [r[0] for r in db.execute(
            "SELECT DISTINCT r.name FROM release_files f JOIN releases r ON r.id = f.release_id"
            " WHERE f.file_sha256 = ? ORDER BY r.name", (sha256,))]
        if held:
            raise FileInUse("release %s holds this file; delete the release first"
                            % ", ".join(held))
        cur = db.execute("UPDATE files SET deleted_at = ? WHERE sha256 = ? AND deleted_at IS NULL",
                         (time.time(), sha256))
        if cur.rowcount:
            try:
                os.unlink(self.path(sha256))
            except FileNotFoundError:
                pass
        return bool(cur.rowcount)
