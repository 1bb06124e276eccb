"""A push's names before any device sees them (webapp/manifest.py): deletes, the runtime,
files and folders of one name, and the manifest lines."""
from types import SimpleNamespace

import pytest

from webapp.manifest import (BadPayload, Item, check_fit, check_items, manifest,
                             runtime_files)

F = SimpleNamespace(sha1="a" * 40, size=5, name="x.py", sha256="b" * 64)
DEVICE = {"main.py": "1" * 40, "tools": "2" * 40, "pkg/mod.py": "3" * 40, "notes.txt": "4" * 40}


def items(*names, delete=()):
    return [Item(F, n) for n in names] + [Item(None, n) for n in delete]


def test_the_manifest_lists_writes_and_deletes_in_stream_order():
    assert manifest(items("main.py", delete=["old.txt"])) == (
        b"%s 5 main.py\n- - old.txt\n" % (b"a" * 40))


def test_the_runtime_is_every_board_file_as_source_or_precompiled():
    names = runtime_files()
    for name in ("main.py", "loader.py", "runtime.py", "mqtt_client.mpy", "boot.py"):
        assert name in names
    assert "notes.txt" not in names and "sim.py" not in names


@pytest.mark.parametrize("names, delete, force, why", [
    ((), ["main.py"], False, "main.py is part of the device's runtime"),
    ((), ["ota_receiver.mpy"], False, "ota_receiver.mpy is part of the device's runtime"),
    ((), ["boot.py"], False, "boot.py is the safe-boot code"),
    ((), ["settings.json"], True, "settings.json holds the device's settings and is never deleted"),
    (("lib",), ["lib/a.py"], False, "lib and lib/a.py cannot both be"),
    (("lib/a.py", "lib"), [], False, "lib and lib/a.py cannot both be"),
    ((), ["../x"], False, "an empty, '.' or '..' part"),
    (("a.py",), ["a.py"], False, "a.py is named twice"),
])
def test_a_push_that_cannot_be_is_refused_with_the_reason(names, delete, force, why):
    with pytest.raises(ValueError) as info:  # BadPayload, or names.BadName for a name
        check_items(items(*names, delete=delete), force)
    assert why in str(info.value)


def test_force_allows_deleting_the_runtime():
    assert check_items(items(delete=["main.py", "boot.py"]), force=True)


@pytest.mark.parametrize("names, delete, why", [
    (("tools/helper.py",), (), "tools is a file on the device"),
    (("pkg",), (), "pkg is a folder on the device"),
    ((), ("pkg",), "pkg is a folder on the device"),
    ((), ("gone.txt",), "gone.txt is not on the device"),
])
def test_names_are_checked_against_the_devices_files(names, delete, why):
    with pytest.raises(BadPayload) as info:
        check_fit(items(*names, delete=delete), DEVICE)
    assert str(info.value) == why


def test_names_that_fit_the_device_pass():
    fine = items("pkg/new.py", "tools2", "main.py", delete=["notes.txt", "pkg/mod.py"])
    assert check_fit(fine, DEVICE) == fine
