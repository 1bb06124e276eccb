"""Hostile MQTT input to the server: thousands of malformed heartbeats, statuses and plugin
states, some from devices named with HTML. The server must not crash, must store nothing
malformed, and must go on serving a real device."""
import io
import json
import random

import pytest

from tests.support.app import push_row, registered
from tests.support.devices import MqttWatcher
from tests.support.waiting import wait_until
from webapp.db import get_db
from webapp.devices import parse_heartbeat
from webapp.names import is_device_name

pytestmark = pytest.mark.integration

N = 2400
NAMES = ["fz-ok", "<script>alert(1)</script>", "a b", "ü-ñ", "x" * 200, "fz-ok2", "&amp;",
         "img src=x onerror=1", "fz_3", ""]


def mutations(rng):
    good = {"online": True, "fw": "0.1.0", "uptime": 5, "boot": 2, "mem_free": 20000,
            "interval": 10, "features": ["ext"], "files": {"main.py": "a" * 40},
            "plugins": {"lamp": {"led": False}}}
    values = [None, True, -1, 2 ** 70, 1.5e308, "", "x" * 5000, [], {}, [1, [2, [3]]],
              "<img src=x onerror=alert(1)>", {"a": "b"}, "\x00\x01", "😀", "\ud800",
              ["\udfff"], {"\ud800": 1}]
    while True:
        kind = rng.randrange(7)
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:
            doc = dict(good)
            doc[rng.choice(list(good))] = rng.choice(values)
            yield json.dumps(doc).encode()
        elif kind == 2:
            text = json.dumps(good).encode()
            yield text[:rng.randrange(len(text))]
        elif kind == 3:
            yield b"[" * rng.randrange(100, 20000)
        elif kind == 4:
            yield json.dumps({"online": True, "pad": "x" * rng.randrange(10000, 40000)}).encode()
        elif kind == 5:
            # Hostile file names and hashes that are not hashes.
            doc = dict(good, files={"<b>%d</b>" % i: rng.choice(["zz", "a" * 40, 5, None])
                                    for i in range(rng.randrange(1, 400))})
            yield json.dumps(doc).encode()
        else:
            yield json.dumps(rng.choice(values)).encode()


def test_the_server_survives_malformed_mqtt_and_stores_only_what_parses(server, mosquitto,
                                                                       devices, unique):
    rng = random.Random(2026)
    gen = mutations(rng)
    sent = 0
    with MqttWatcher(mosquitto.port, topic="fz-sync") as mq:
        for i in range(N):
            name = rng.choice(NAMES)
            kind = rng.choice(["status", "ota/status", "lamp/state"])
            topic = "%s/%s" % (name, kind)
            mq.publish(topic, next(gen), retain=False)
            sent += 1
        mq.publish("fz-sync", b"done")
        mq.wait_for("fz-sync", timeout=30)
    services = server.extensions["dcc_ota"].services
    assert services.bus.sync(60), "the server's MQTT client stopped reading"
    assert sent >= 2000

    with server.app_context():
        rows = get_db().execute("SELECT * FROM devices").fetchall()
        for row in rows:
            assert is_device_name(row["name"]), row["name"]
            if row["online"]:
                doc = {k: row[k] for k in ("uptime", "boot", "mem_free", "fw", "interval")
                       if row[k] is not None}
                doc.update(online=True, features=json.loads(row["features"]),
                           files=json.loads(row["files"]), plugins=json.loads(row["plugins"]))
                parse_heartbeat(json.dumps(doc).encode())  # what was stored still parses

    # And it still serves a real device end to end.
    name = unique("after")
    dev = devices(name)
    registered(server, name, lambda d: d.online)
    with server.app_context():
        f = server.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(b"OK = 1\n"), "ok.py")
        push_id = services.pushes.create(get_db(), name, [f])
    row = wait_until(lambda: (lambda r: r if r["state"] in ("done", "failed") else None)(
        push_row(server, push_id)), 30, what="the push after the fuzz")
    assert row["state"] == "done", row
    assert (dev.flash_dir / "ok.py").read_bytes() == b"OK = 1\n"


def test_a_lone_surrogate_in_a_heartbeat_is_refused_with_one_log_line(server, mosquitto,
                                                                     caplog):
    """JSON may escape half a UTF-16 pair ("\\ud800"); no database can store it. Refused
    when parsed, like any malformed payload: one warning, no traceback, no row."""
    with MqttWatcher(mosquitto.port, topic="fz-nan/status") as mq:  # a device to aim at
        mq.publish("fz-nan/status", b'{"online":true,"plugins":{"lamp":{"led":false}}}')
        mq.wait_for("fz-nan/status", timeout=10)
    registered(server, "fz-nan")
    payloads = {"fz-sur/status": b'{"online":true,"fw":"\\ud800"}',
                "fz-sur2/status": b'{"online":true,"files":{"\\udfff.py":"' + b"a" * 40 + b'"}}',
                "fz-sur3/lamp/state": b'{"led":"\\ud800"}',
                # NaN and Infinity are Python's, not JSON's: stored, they break every page
                "fz-nan/lamp/state": b'{"led":NaN,"relay":1e400}',
                "fz-nan/status": b'{"online":true,"plugins":{"lamp":{"led":Infinity}}}'}
    with MqttWatcher(mosquitto.port, topic="fz-sync2") as mq:
        for topic, payload in payloads.items():
            mq.publish(topic, payload, retain=False)
        mq.publish("fz-sync2", b"done")
        mq.wait_for("fz-sync2", timeout=30)
    assert server.extensions["dcc_ota"].services.bus.sync(30)
    with server.app_context():
        names = {r[0] for r in get_db().execute("SELECT name FROM devices")}
    assert not names & {"fz-sur", "fz-sur2", "fz-sur3"}
    warnings = [r.getMessage() for r in caplog.records if "lone surrogate" in r.getMessage()
                or "is not a JSON number" in r.getMessage()]
    assert len(warnings) == len(payloads), warnings  # one line each
    with server.app_context():
        plugins = server.extensions["dcc_ota"].registry.get(get_db(), "fz-nan").plugins
    assert plugins == {"lamp": {"led": False}}
    json.dumps(plugins, allow_nan=False)  # what the pages poll stays JSON
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
