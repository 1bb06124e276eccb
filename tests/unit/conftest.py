import re

import pytest

from webapp import create_app
from webapp import users
from webapp.db import get_db

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path):
    """A throwaway app: its own database and file store, no services started."""
    return create_app({
        "OTA_DATABASE": str(tmp_path / "db.sqlite"),
        "OTA_FILE_STORE": str(tmp_path / "files"),
        "OTA_MAX_UPLOAD": 4096,
        "TESTING": True,
    })


def csrf_token(client, path="/"):
    page = client.get(path, follow_redirects=True).data.decode()
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def login(client, username="admin", password=PASSWORD):
    """Log in through the form, as a browser does; returns the response."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


@pytest.fixture
def anon(app):
    """A browser that has not logged in (an admin exists)."""
    with app.app_context():
        users.create_user(get_db(), "admin", PASSWORD)
    return app.test_client()


@pytest.fixture
def client(anon):
    """A logged-in browser whose requests carry the CSRF token, as the pages' scripts send it."""
    assert login(anon).status_code == 302
    anon.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(anon)
    return anon


@pytest.fixture
def db(app):
    with app.app_context():
        yield get_db()
