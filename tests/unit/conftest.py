import pytest

from webapp import create_app


@pytest.fixture
def app(tmp_path):
    """A throwaway app: its own database and file store, no services started."""
    return create_app({
        "OTA_DATABASE": str(tmp_path / "db.sqlite"),
        "OTA_FILE_STORE": str(tmp_path / "files"),
        "OTA_MAX_UPLOAD": 4096,
        "TESTING": True,
    })


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    with app.app_context():
        from webapp.db import get_db
        yield get_db()
