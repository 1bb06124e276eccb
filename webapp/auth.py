"""Who may use the server: log in, the first-run admin, API tokens, CSRF and security headers.

Every page and API call needs a logged-in user (a session cookie) or an API token
(`Authorization: Bearer dcc_...`), except the login and first-run pages, /api/health and the
static files. Cookie sessions must send the CSRF token with every state-changing request;
token-authenticated API calls carry no cookie and need none. A token reaches only the API
calls in TOKEN_ENDPOINTS (docs/security.md): nothing that manages credentials. Logging out
or changing the password ends every session of the user, in every browser (users.end_sessions).
"""
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from . import users
from .db import get_db
from .errors import json_error, wants_json

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://")

OPEN_ENDPOINTS = ("auth.login", "auth.setup", "api.health", "static")
# What a script with an API token may do, all of it: files, pushes, devices as they report
# themselves, plugin commands. Never tokens, the account, or device keys (adding a device
# makes one; its settings hold it): a leaked token must not be able to mint credentials.
TOKEN_ENDPOINTS = frozenset((
    "api.health", "api.devices", "api.device", "api.plugin_command",
    "api.files", "api.upload", "api.delete_file",
    "api.pushes", "api.push", "api.create_push", "api.cancel_push", "api.retry_push",
    "api.set_device_tags", "api.tags",
    "api.fleet.releases", "api.fleet.release", "api.fleet.create_release",
    "api.fleet.delete_release", "api.fleet.rollouts", "api.fleet.rollout",
    "api.fleet.create_rollout", "api.fleet.pause_rollout", "api.fleet.resume_rollout",
    "api.fleet.cancel_rollout",
))
# No inline script anywhere: every script is a file under /static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


@login_manager.user_loader
def _load_user(session_id):
    return users.for_session(get_db(), session_id)


@login_manager.request_loader
def _load_token_user(_request):
    return g.get("token_user")  # set by _guard from the Authorization header


def _bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _guard():
    """Before every request: a user or a token, else the login page (or a JSON 401)."""
    token = _bearer_token()
    if token is not None:
        # A script: no cookie is involved, so no CSRF token either (a forged cross-site
        # request cannot carry this header).
        g.token_user = users.user_for_token(get_db(), token)
        if g.token_user is None:
            return json_error(401, "bad_token", "the API token is unknown or revoked")
        if request.endpoint is None or request.endpoint == "static":
            return None  # no such route (a 404 follows), or a public file
        if request.endpoint not in TOKEN_ENDPOINTS:
            return json_error(403, "not_for_tokens", "an API token may use the API for files, "
                                                     "pushes, devices, releases and rollouts only (docs/security.md)"
                                                     ": log in to manage tokens, the account "
                                                     "or device keys")
        return None
    if request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        csrf.protect()
        return None
    # nobody logged in: that first (a CSRF error would send a script to reload a form)
    if wants_json():
        return json_error(401, "login_required", "log in, or send an API token as "
                                                 "'Authorization: Bearer ...'")
    if users.count(get_db()) == 0:
        return redirect(url_for("auth.setup"))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def holds_secret():
    """Mark this request's response as holding a secret (a device key, a new token): never
    cached, by the browser or anything between (Cache-Control: no-store, set by _headers)."""
    g.holds_secret = True


def _headers(response):
    if g.get("holds_secret"):
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _csrf_error(exc):
    message = "the form expired or did not come from this site (%s); reload the page and try " \
              "again" % exc.description
    if wants_json():
        return json_error(400, "csrf", message)
    return render_template("error.html", code=400, name="Bad Request", message=message), 400


def _safe_next(target):
    """Only a path on this site: never an open redirect."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not (target or "").startswith("/") or target.startswith("//"):
        return url_for("pages.devices")
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5/minute", methods=["POST"], deduct_when=lambda r: r.status_code != 302,
               error_message="too many failed logins: wait a minute")
def login():
    if users.count(get_db()) == 0:
        return redirect(url_for(".setup"))
    if request.method == "POST":
        user = users.authenticate(get_db(), request.form.get("username"),
                                  request.form.get("password"))
        if user is not None:
            session.clear()
            login_user(user, remember=request.form.get("remember") == "yes")
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong user name or password.", "error")
        return render_template("auth/login.html"), 401
    return render_template("auth/login.html")


@bp.route("/setup", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def setup():
    """First run: make the admin account. Closed for good once a user exists."""
    if users.count(get_db()) > 0:
        return redirect(url_for(".login"))
    if request.method == "POST":
        if request.form.get("password") != request.form.get("confirm"):
            flash("The two passwords differ.", "error")
            return render_template("auth/setup.html"), 400
        try:
            user = users.create_user(get_db(), request.form.get("username"),
                                     request.form.get("password"))
        except users.BadCredentials as exc:
            flash(str(exc).capitalize() + ".", "error")
            return render_template("auth/setup.html"), 400
        login_user(user)
        flash("Welcome, %s. Devices appear with their first heartbeat." % user.username, "ok")
        return redirect(url_for("pages.devices"))
    return render_template("auth/setup.html")


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        users.end_sessions(get_db(), current_user)  # every copy of the cookie, everywhere
    logout_user()
    session.clear()
    flash("Logged out.", "ok")
    return redirect(url_for(".login"))


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    created = None
    if request.method == "POST":
        try:
            created = users.create_token(get_db(), current_user, request.form.get("name"))
            holds_secret()
        except users.BadCredentials as exc:
            flash(str(exc).capitalize() + ".", "error")
            return render_template("auth/tokens.html", created=None,
                                   tokens=users.tokens(get_db(), current_user)), 400
    return render_template("auth/tokens.html", tokens=users.tokens(get_db(), current_user),
                           created=created)


@bp.post("/password")
@login_required
def password():
    """Change the password: every session ends, this one goes on as a new one."""
    try:
        user = users.change_password(get_db(), current_user, request.form.get("current"),
                                     request.form.get("new"))
    except users.BadCredentials as exc:
        flash("Password not changed: %s." % exc, "error")
        return redirect(url_for(".tokens"))
    session.clear()
    login_user(user)
    flash("Password changed: every other session has ended.", "ok")
    return redirect(url_for(".tokens"))


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id):
    if users.revoke_token(get_db(), current_user, token_id):
        flash("Token revoked: scripts using it are refused from now on.", "ok")
    else:
        flash("That token was already revoked.", "error")
    return redirect(url_for(".tokens"))


def init_app(app):
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # _guard decides, per request
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)      # valid for the whole session
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SECURE"] = app.config["OTA_HTTPS"]
    app.config["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["OTA_HTTPS"]
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    csrf.init_app(app)
    limiter.init_app(app)
    app.before_request(_guard)
    app.after_request(_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_blueprint(bp)
