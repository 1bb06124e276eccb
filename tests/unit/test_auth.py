"""Login, first run, CSRF, API tokens, rate limits and security headers."""
import io
import re

import pytest

from tests.unit.conftest import PASSWORD, csrf_token, login
from webapp import users
from webapp.db import get_db

OPEN = {"auth.login", "auth.setup", "api.health", "static"}


def every_route(app):
    """(method, url, endpoint) for every rule, with placeholder arguments."""
    for rule in app.url_map.iter_rules():
        url = re.sub(r"<(?:int:)?([a-z_]+)>", lambda m: "1" if "int:" in m.group(0) else "x",
                     rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url, rule.endpoint


def test_every_route_but_login_and_health_needs_a_user(app, anon):
    checked = 0
    for method, url, endpoint in every_route(app):
        if endpoint in OPEN:
            continue
        r = anon.open(url, method=method, headers={"X-CSRFToken": csrf_token(anon, "/login")})
        if url.startswith("/api/"):
            assert (r.status_code, r.json["error"]) == (401, "login_required"), (method, url)
        else:
            assert r.status_code == 302 and "/login?next=" in r.location, (method, url)
        checked += 1
    assert checked >= 20
    # open to all: it answers with its checks (a 503 here: no MQTT in a test app), no login
    r = anon.get("/api/health")
    assert r.status_code == 503 and r.json["checks"]["database"] is True


def test_every_post_without_the_csrf_token_is_refused(app, client):
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    checked = 0
    for method, url, endpoint in every_route(app):
        if method in ("POST", "DELETE") and endpoint != "static":
            r = client.open(url, method=method, json={})
            assert r.status_code == 400, (method, url, r.status_code)
            assert b"csrf" in r.data.lower() or b"CSRF" in r.data, (method, url)
            checked += 1
    assert checked >= 12


def test_first_run_makes_the_admin_then_closes(app):
    c = app.test_client()
    assert c.get("/").location.endswith("/setup")
    token = csrf_token(c, "/setup")
    short = c.post("/setup", data={"username": "me", "password": "short", "confirm": "short",
                                   "csrf_token": token})
    assert short.status_code == 400 and b"at least 10 characters" in short.data
    made = c.post("/setup", data={"username": "me", "password": PASSWORD, "confirm": PASSWORD,
                                  "csrf_token": token}, follow_redirects=True)
    assert b"Welcome, me." in made.data and b"Log out" in made.data
    assert app.test_client().get("/setup").location.endswith("/login")


def test_passwords_are_stored_as_salted_slow_hashes(app, anon):
    with app.app_context():
        stored = get_db().execute("SELECT password_hash FROM users").fetchone()[0]
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_a_wrong_password_is_refused_and_five_in_a_minute_are_the_limit(anon):
    for _ in range(5):
        r = login(anon, password="wrong password!")
        assert r.status_code == 401 and b"Wrong user name or password." in r.data
    r = login(anon)
    assert r.status_code == 429 and b"too many failed logins" in r.data


def test_a_good_login_is_not_counted_against_the_limit(anon):
    for _ in range(7):
        assert login(anon).status_code == 302


def test_login_never_redirects_off_site(anon):
    token = csrf_token(anon, "/login")
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        r = anon.post("/login?next=" + target, data={"username": "admin", "password": PASSWORD,
                                                     "csrf_token": token})
        assert r.location == "/", target
        token = csrf_token(anon, "/login")
    r = anon.post("/login?next=/history", data={"username": "admin", "password": PASSWORD,
                                                "csrf_token": token})
    assert r.location == "/history"


def test_session_cookie_flags(anon):
    r = login(anon)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookies_when_served_over_https(tmp_path):
    from webapp import create_app
    app = create_app({"OTA_DATABASE": str(tmp_path / "d.sqlite"), "OTA_FILE_STORE": str(tmp_path),
                      "OTA_HTTPS": True})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_logout_ends_the_session(client):
    assert client.post("/logout").location.endswith("/login")
    assert client.get("/").status_code == 302


def test_an_api_token_works_without_cookies_or_csrf_until_revoked(app, client):
    page = client.post("/tokens", data={"name": "nightly build"}).data.decode()
    token = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    with app.app_context():
        stored = get_db().execute("SELECT token_sha256 FROM api_tokens").fetchone()[0]
    assert token not in stored  # only a hash is kept

    script = app.test_client()
    auth = {"Authorization": "Bearer " + token}
    assert script.get("/api/devices", headers=auth).status_code == 200
    up = script.post("/api/files", headers=auth, data={"file": (io.BytesIO(b"T"), "t.py")})
    assert up.status_code == 201  # a POST with no CSRF token: none is needed with a token
    assert "Set-Cookie" not in up.headers

    token_id = re.search(r'/tokens/(\d+)/revoke', client.get("/tokens").data.decode()).group(1)
    assert b"Token revoked" in client.post("/tokens/%s/revoke" % token_id,
                                           follow_redirects=True).data
    r = script.get("/api/devices", headers=auth)
    assert (r.status_code, r.json["error"]) == (401, "bad_token")
    assert script.get("/api/devices", headers={"Authorization": "Bearer dcc_nope"}).status_code == 401


def test_security_headers_on_every_answer(client, anon):
    for r in (client.get("/"), anon.get("/login"), client.get("/api/devices"), anon.get("/x")):
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"


def test_no_page_has_inline_script(client):
    client.post("/api/files", data={"file": (io.BytesIO(b"P"), "p.py")})
    for path in ("/", "/files", "/push", "/history", "/tokens"):
        html = client.get(path).data.decode()
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == [], path
        assert not re.search(r"\son[a-z]+=", html), path


@pytest.mark.parametrize("field, value", [
    ("upload", "../../etc/passwd"), ("upload", "/abs.py"), ("upload", "a/b/c.py"),
    ("as", "../boot.py"), ("as", "/main.py"), ("as", "lib/../../x"),
])
def test_path_traversal_in_name_fields_is_refused(client, field, value):
    if field == "upload":
        r = client.post("/api/files", data={"file": (io.BytesIO(b"x"), value)})
        assert r.status_code == 400 and r.json["error"] == "bad_name"
        assert client.get("/api/files").json["files"] == []
    else:
        sha = client.post("/api/files", data={"file": (io.BytesIO(b"x"), "x.py")}).json
        r = client.post("/api/pushes", json={"file": sha["files"][0]["sha256"], "as": value,
                                             "devices": ["lamp1"]})
        assert (r.status_code, r.json["error"]) == (400, "rejected")


def test_users_are_unique_and_need_long_passwords(app):
    with app.app_context():
        db = get_db()
        users.create_user(db, "a", PASSWORD)
        with pytest.raises(users.BadCredentials, match="exists"):
            users.create_user(db, "a", PASSWORD)
        with pytest.raises(users.BadCredentials, match="10 characters"):
            users.create_user(db, "b", "123")


def test_a_script_without_a_login_is_told_to_log_in_not_to_reload_a_form(anon):
    for method, url in (("POST", "/api/rollouts"), ("POST", "/api/pushes"),
                        ("PUT", "/api/devices/lamp1/tags"), ("DELETE", "/api/releases/x")):
        r = anon.open(url, method=method, json={})
        assert (r.status_code, r.json["error"]) == (401, "login_required"), (method, url)
