import pytest

from webapp.names import BadName, check_device_name, check_display_name, check_target


@pytest.mark.parametrize("name", ["main.py", "lib/util.py", "a" * 64, "data.bin"])
def test_good_targets(name):
    assert check_target(name) == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("/main.py", "relative"), ("../main.py", "'..'"), ("lib/../x", "'..'"),
    ("a/b/c.py", "one sub-folder"), ("settings.json", "settings"), (".ota.part", "'.'"),
    ("lib/.hidden", "'.'"), ("ma\nin.py", "control"), ("a|b", "'|'"), ("a\\b", "'\\\\'"),
    ("固件.bin", "ASCII"), ("x" * 65, "longer"), ("lib//x.py", "empty"),
    ("my file.py", "space"),
])
def test_hostile_targets_are_refused_with_the_reason(name, why):
    with pytest.raises(BadName, match=why):
        check_target(name)


@pytest.mark.parametrize("name", ["lamp1", "esp-0a1b", "kitchen_relay"])
def test_good_device_names(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "<b>x</b>", "x" * 33, "lamp 1"])
def test_bad_device_names(name):
    with pytest.raises(BadName):
        check_device_name(name)


@pytest.mark.parametrize("name", ["evil\u202etxt.py", "main\u200b.py", "a\u2028b.py",
                                  "a\u0085b.py", "a\x00b.py", "a\x7fb.py", "a\ud800.py",
                                  "a\ue000.py"])
def test_a_shown_name_with_an_invisible_or_reordering_character_is_refused(name):
    with pytest.raises(BadName, match="control, format or separator"):
        check_display_name(name)


@pytest.mark.parametrize("name", ["固件.bin", "lampe-été.py", "ملف.txt", "main.py"])
def test_a_shown_name_in_any_language_is_fine(name):
    assert check_display_name(name) == name
