"""People who may use the server, and the API tokens their scripts use."""
import hashlib
import secrets
import time
from dataclasses import dataclass

from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD = 10
TOKEN_PREFIX = "dcc_"


class BadCredentials(ValueError):
    """A user name, password or token name is not acceptable; the message says why."""


@dataclass
class User(UserMixin):
    id: int
    username: str
    epoch: int = 0  # users.session_epoch when this session began

    def get_id(self):
        # what flask-login keeps in the session and the remember-me cookie: "id:epoch"
        return "%d:%d" % (self.id, self.epoch)


def count(db):
    return db.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def create_user(db, username, password):
    username = (username or "").strip()
    if not 1 <= len(username) <= 64 or not username.isprintable():
        raise BadCredentials("a user name is 1 to 64 printable characters")
    if len(password or "") < MIN_PASSWORD:
        raise BadCredentials("a password has at least %d characters" % MIN_PASSWORD)
    if db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
        raise BadCredentials("%s exists already" % username)
    # werkzeug's default is a salted scrypt hash: slow on purpose.
    user_id = db.execute("INSERT INTO users (username, password_hash, created_at) VALUES (?,?,?)",
                         (username, generate_password_hash(password), time.time())).lastrowid
    return User(user_id, username, 0)


def get(db, user_id):
    row = db.execute("SELECT id, username, session_epoch FROM users WHERE id = ?",
                     (user_id,)).fetchone()
    return User(row["id"], row["username"], row["session_epoch"]) if row else None


def for_session(db, session_id):
    """The user of a session's or remember-me cookie's id ("id:epoch"), or None once that
    user logged out or changed the password since (the epoch moved on)."""
    user_id, _, epoch = (session_id or "").partition(":")
    if not (user_id.isdigit() and epoch.isdigit()) or len(session_id) > 40:
        return None
    user = get(db, int(user_id))
    return user if user is not None and user.epoch == int(epoch) else None


def end_sessions(db, user):
    """Every session and remember-me cookie of `user`, in every browser, stops working."""
    db.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?", (user.id,))


def change_password(db, user, old, new):
    """Set a new password (BadCredentials if `old` is wrong or `new` too short); every
    session ends. Returns the user as the new session's."""
    if authenticate(db, user.username, old) is None:
        raise BadCredentials("the current password is wrong")
    if len(new or "") < MIN_PASSWORD:
        raise BadCredentials("a password has at least %d characters" % MIN_PASSWORD)
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?",
               (generate_password_hash(new), user.id))
    end_sessions(db, user)
    return get(db, user.id)


def authenticate(db, username, password):
    """The user if the password is right, else None."""
    row = db.execute("SELECT * FROM users WHERE username = ?", ((username or "").strip(),)).fetchone()
    if row is None:
        # Same work whether or not the name exists, so timing does not tell names apart.
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(row["password_hash"], password or ""):
        return None
    return User(row["id"], row["username"], row["session_epoch"])


_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db, user, name):
    """A new API token for `user`; the plain token is returned this once and never stored."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise BadCredentials("a token's name is 1 to 64 printable characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.execute("INSERT INTO api_tokens (user_id, name, token_sha256, created_at) VALUES (?,?,?,?)",
               (user.id, name, _digest(token), time.time()))
    return token


def tokens(db, user):
    return [dict(r) for r in db.execute(
        "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = ?"
        " AND revoked_at IS NULL ORDER BY id", (user.id,))]


def revoke_token(db, user, token_id):
    cur = db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ?"
                     " AND revoked_at IS NULL", (time.time(), token_id, user.id))
    return bool(cur.rowcount)


def user_for_token(db, token):
    """The user a live token belongs to, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = db.execute("SELECT t.id AS token_id, u.id, u.username, u.session_epoch"
                     " FROM api_tokens t JOIN users u ON u.id = t.user_id"
                     " WHERE t.token_sha256 = ? AND t.revoked_at IS NULL",
                     (_digest(token),)).fetchone()
    if row is None:
        return None
    db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (time.time(), row["token_id"]))
    return User(row["id"], row["username"], row["session_epoch"])
