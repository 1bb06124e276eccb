import json

import pytest

from webapp.devices import Registry, parse_heartbeat

SHA = "a" * 40


def beat(**over):
    doc = {"online": True, "fw": "0.1.0", "uptime": 5, "boot": 3, "mem_free": 20000,
           "interval": 10, "features": ["ext"], "files": {"main.py": SHA},
           "plugins": {"lamp": {"led": False, "relay": True}}}
    doc.update(over)
    return json.dumps(doc).encode()


def test_a_heartbeat_is_read_field_by_field():
    hb = parse_heartbeat(beat())
    assert hb.online and hb.boot == 3 and hb.features == ("ext",)
    assert hb.files == {"main.py": SHA} and hb.plugins["lamp"]["relay"] is True


@pytest.mark.parametrize("payload, why", [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"[1,2]", "not a JSON object"),
    (b'{"online": "yes"}', "boolean 'online'"),
    (beat(boot=-1), "boot"),
    (beat(boot="7"), "boot"),
    (beat(uptime=True), "uptime"),
    (beat(interval=0), "interval"),
    (beat(features="ext"), "features"),
    (beat(files={"main.py": "nothex"}), "files"),
    (beat(files=[1]), "files"),
    (beat(plugins={"<b>x</b>": {}}), "plugins"),
    (beat(fw="x" * 100), "fw"),
    (b'{"online": true, "pad": "' + b"x" * 20000 + b'"}', "over"),
])
def test_malformed_heartbeats_are_refused_with_a_reason(payload, why):
    with pytest.raises(ValueError, match=why):
        parse_heartbeat(payload)


def test_a_last_will_keeps_what_the_device_said_before(db):
    reg = Registry(misses=3)
    reg.record(db, "lamp1", parse_heartbeat(beat()), now=100.0)
    reg.record(db, "lamp1", parse_heartbeat(b'{"online": false, "reason": "rebooting"}'), now=101.0)
    d = reg.get(db, "lamp1", now=102.0)
    assert not d.online and d.note == "rebooting"
    assert d.boot == 3 and d.files == {"main.py": SHA}


def test_a_device_that_misses_three_heartbeats_is_offline(db):
    reg = Registry(misses=3)
    reg.record(db, "lamp1", parse_heartbeat(beat(interval=10)), now=1000.0)
    assert reg.get(db, "lamp1", now=1030.0).online
    late = reg.get(db, "lamp1", now=1032.0)
    assert not late.online and late.note == "missed 3 heartbeats"


def test_plugin_state_updates_the_device(db):
    reg = Registry()
    reg.record(db, "lamp1", parse_heartbeat(beat()), now=1.0)
    reg.record_plugin_state(db, "lamp1", "lamp", {"led": True, "relay": True})
    assert reg.get(db, "lamp1", now=2.0).plugins == {"lamp": {"led": True, "relay": True}}
    reg.record_plugin_state(db, "ghost", "lamp", {"led": True})
    assert reg.get(db, "ghost") is None


def test_a_heartbeat_says_which_micropython_runs_and_the_mpy_format_it_loads(tmp_path):
    from webapp.db import connect, init_db

    hb = parse_heartbeat(beat(micropython=[1, 24, 1, ""], _mpy=6 | 3 << 8 | 10 << 10))
    assert (hb.micropython, hb.mpy) == ("1.24.1", 6 | 3 << 8 | 10 << 10)
    assert parse_heartbeat(beat(micropython=[1, 29, 0, "preview"])).micropython == \
        "1.29.0-preview"
    path = str(tmp_path / "db.sqlite")
    init_db(path)
    db = connect(path)
    Registry().record(db, "esp32", hb)
    d = Registry().get(db, "esp32")
    assert d.runs == "1.24.1, .mpy v6.3 (xtensawin)"
    assert (d.to_dict()["mpy_format"], d.to_dict()["mpy_arch"]) == ("v6.3", "xtensawin")
    Registry().record(db, "old", parse_heartbeat(beat()))  # firmware that does not say
    assert Registry().get(db, "old").runs is None


@pytest.mark.parametrize("payload", [beat(_mpy="6"), beat(_mpy=-1), beat(_mpy=1 << 20),
                                     beat(micropython="1.24"), beat(micropython=[1.5]),
                                     beat(micropython=[1, 2, 3, 4, 5])])
def test_a_bad_micropython_or_mpy_field_is_refused(payload):
    with pytest.raises(ValueError, match="micropython|_mpy"):
        parse_heartbeat(payload)
