"""Issue 10's credentials: what an API token may do (and may not: manage credentials), every
copy of a session ending at logout and at a password change, and secrets never cached."""
import re

import pytest

from tests.unit.conftest import PASSWORD, csrf_token, login
from webapp.auth import TOKEN_ENDPOINTS
from tests.unit.test_auth import every_route


def new_token(client, name="script"):
    page = client.post("/tokens", data={"name": name}).data.decode()
    return re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)


def test_a_token_cannot_mint_list_or_revoke_tokens_or_touch_the_account(app, client):
    token = new_token(client)
    script = app.test_client()
    auth = {"Authorization": "Bearer " + token}

    for method, url in (("POST", "/tokens"), ("GET", "/tokens"), ("POST", "/tokens/1/revoke"),
                        ("POST", "/password"), ("POST", "/logout"), ("GET", "/"),
                        ("POST", "/api/devices"), ("GET", "/api/devices/lamp1/settings"),
                        ("POST", "/devices/add"), ("GET", "/devices/lamp1/settings.json")):
        r = script.open(url, method=method, headers=auth, data={"name": "minted"})
        assert (r.status_code, r.json["error"]) == (403, "not_for_tokens"), (method, url)
    assert len(re.findall(r"/tokens/\d+/revoke", client.get("/tokens").data.decode())) == 1

    # revoking the one token locks the script out: there is no other
    token_id = re.search(r"/tokens/(\d+)/revoke", client.get("/tokens").data.decode()).group(1)
    client.post("/tokens/%s/revoke" % token_id)
    assert script.get("/api/devices", headers=auth).status_code == 401


def test_what_a_token_may_do_is_one_list_and_every_entry_is_an_api_route(app):
    endpoints = {e for _, _, e in every_route(app)}
    assert TOKEN_ENDPOINTS <= endpoints
    assert all(e.startswith("api.") for e in TOKEN_ENDPOINTS)
    assert {"api.add_device", "api.device_settings"} & TOKEN_ENDPOINTS == set()


def test_a_saved_session_cookie_is_dead_after_logout(app, client):
    saved = client.get_cookie("session").value
    assert client.get("/api/devices").status_code == 200
    client.post("/logout")

    replay = app.test_client()
    replay.set_cookie("session", saved)
    r = replay.get("/api/devices", headers={"Accept": "application/json"})
    assert (r.status_code, r.json["error"]) == (401, "login_required")


def test_a_remember_me_cookie_is_dead_after_logout(app, anon):
    token = csrf_token(anon, "/login")
    anon.post("/login", data={"username": "admin", "password": PASSWORD,
                              "csrf_token": token, "remember": "yes"})
    remember = anon.get_cookie("remember_token").value
    fresh = app.test_client()
    fresh.set_cookie("remember_token", remember)
    assert fresh.get("/api/devices").status_code == 200  # it does log a browser in

    anon.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(anon)
    anon.post("/logout")

    later = app.test_client()
    later.set_cookie("remember_token", remember)
    assert later.get("/api/devices").status_code == 401


def test_a_password_change_ends_every_other_session_and_keeps_this_one(app, client):
    other = app.test_client()
    assert login(other).status_code == 302
    assert other.get("/api/devices").status_code == 200

    r = client.post("/password", data={"current": PASSWORD, "new": "a new long password"},
                    follow_redirects=True)
    assert b"Password changed" in r.data

    assert other.get("/api/devices").status_code == 401
    assert client.get("/api/devices").status_code == 200
    fresh = app.test_client()
    assert login(fresh, password=PASSWORD).status_code == 401
    assert login(fresh, password="a new long password").status_code == 302


def test_a_wrong_current_password_changes_nothing(app, client):
    r = client.post("/password", data={"current": "not it at all", "new": "a new long password"},
                    follow_redirects=True)
    assert b"Password not changed: the current password is wrong." in r.data
    assert client.get("/api/devices").status_code == 200
    assert login(app.test_client(), password=PASSWORD).status_code == 302


@pytest.mark.parametrize("method, url, data", [
    ("POST", "/api/devices", {"json": {"name": "lamp9"}}),
    ("GET", "/api/devices/lamp1/settings", {}),
    ("GET", "/devices/lamp1/settings.json", {}),
    ("POST", "/tokens", {"data": {"name": "nightly"}}),
])
def test_every_response_with_a_secret_is_never_cached(client, method, url, data):
    client.post("/api/devices", json={"name": "lamp1"})  # a key to show
    r = client.open(url, method=method, **data)
    assert r.status_code in (200, 201), r.data[:200]
    assert r.headers["Cache-Control"] == "no-store"


def test_the_add_device_page_with_the_key_is_never_cached(client):
    r = client.post("/devices/add", data={"name": "lamp2"})
    assert r.status_code == 200 and b'&#34;key&#34;' in r.data
    assert r.headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
