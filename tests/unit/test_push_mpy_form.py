"""The push form offers a precompiled push where it can go, and says what it saves."""
import io

import pytest

from tests.support.files import big_plugin_py
from tests.unit.test_board_tools import no_mpy_cross  # noqa: F401 (a fixture)
from tests.unit.test_pages import beat
from webapp import board_tools
from webapp.db import get_db
from webapp.formatting import size
from webapp.push.service import PushRejected

V6_3, V6_1 = 6 | 3 << 8 | 9 << 10, 6 | 1 << 8 | 9 << 10


def store(app, data, name):
    with app.app_context():
        return app.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), name)


def test_the_form_offers_mpy_where_the_format_matches_and_shows_the_size_saved(app, client):
    beat(app, "esp-new", micropython=[1, 29, 0], _mpy=V6_3)
    beat(app, "esp-old", micropython=[1, 20, 0], _mpy=V6_1)
    beat(app, "seed")
    source = big_plugin_py(steps=8)  # under the test app's OTA_MAX_UPLOAD
    f = store(app, source, "big.py")
    store(app, b"data", "blob.bin")
    compiled = len(board_tools.compile_source(source, "big.py"))

    page = client.get("/push").data.decode()

    assert '<input type="checkbox" name="mpy" value="yes" id="mpy">' in page
    assert "mpy-cross of MicroPython 1.29.0, .mpy v6.3" in page
    assert 'data-mpy-size="%d">as .mpy %s, %s saved</span>' % (
        compiled, size(compiled), size(len(source) - compiled)) in page
    assert page.count("data-mpy-size=") == 1  # blob.bin is not Python
    assert 'esp-new <span class="badge online">online</span> <span class="hint mpy-ok">' \
        'takes .mpy v6.3</span>' in page
    assert "source only: it loads .mpy v6.1, not v6.3" in page
    assert "source only: its .mpy format is unknown" in page
    assert f.size == len(source)


def test_without_mpy_cross_the_form_says_so_and_a_precompiled_push_is_refused(
        app, client, no_mpy_cross):  # noqa: F811
    beat(app, "esp-new", micropython=[1, 29, 0], _mpy=V6_3)
    f = store(app, b"x = 1\n", "util.py")

    page = client.get("/push").data.decode()

    assert 'name="mpy"' not in page
    assert "Precompiling to .mpy needs mpy-cross on the server" in page
    pushes = app.extensions["dcc_ota"].pushes
    pushes.bus = object()  # as if started: the checks run before anything would be sent
    with app.app_context(), pytest.raises(PushRejected, match=r"^cannot precompile: mpy-cross "
                                                              "not found; install it with"):
        pushes.create(get_db(), "esp-new", [f.sha256], mpy=True)
