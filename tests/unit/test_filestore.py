import hashlib
import io
import os

import pytest

from webapp.filestore import FileTooLarge
from webapp.names import BadName


def store(app):
    return app.extensions["dcc_ota"].store


def test_same_bytes_are_stored_once_under_their_hash(app, db):
    data = b"print('night lamp')\n" * 20
    first = store(app).save(db, io.BytesIO(data), "main.py")
    again = store(app).save(db, io.BytesIO(data), "copy-of-main.py")
    assert first == again
    assert first.sha1 == hashlib.sha1(data).hexdigest()
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert [f.name for f in store(app).all(db)] == ["main.py"]
    with open(store(app).path(first.sha256), "rb") as f:
        assert f.read() == data
    assert os.listdir(store(app).root) == [first.sha256]


@pytest.mark.parametrize("name, why", [
    ("../../etc/passwd", "'..'"), ("/etc/passwd", "relative"), ("a/b/c.py", "one sub-folder"),
    ("evil\x00.py", "control"), ("dir\\x.py", "backslash"), ("x" * 129, "longer"), ("", "no name"),
])
def test_a_hostile_name_is_refused_and_nothing_is_stored(app, db, name, why):
    with pytest.raises(BadName, match=why):
        store(app).save(db, io.BytesIO(b"x"), name)
    assert os.listdir(store(app).root) == []


def test_any_language_is_a_fine_label_since_bytes_are_found_by_hash(app, db):
    f = store(app).save(db, io.BytesIO(b"fw"), "固件.bin")
    assert f.name == "固件.bin" and os.listdir(store(app).root) == [f.sha256]


def test_too_large_keeps_nothing(app, db):
    with pytest.raises(FileTooLarge):
        store(app).save(db, io.BytesIO(b"x" * 5000), "big.bin")
    assert os.listdir(store(app).root) == []
    assert store(app).all(db) == []


def test_find_by_prefix_of_either_hash_or_by_name(app, db):
    f = store(app).save(db, io.BytesIO(b"abc"), "Lamp.py")
    assert store(app).find(db, f.sha1[:8]) == f
    assert store(app).find(db, f.sha256[:10].upper()) == f
    assert store(app).find(db, "Lamp.py") == f
    assert store(app).find(db, "lamp.py") is None
    assert store(app).find(db, "nothing") is None
