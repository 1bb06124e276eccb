"""Signed triggers end to end: the server signs a push for a device with a key, the device
(firmware/ on MicroPython, real mosquitto) takes it; an attacker on the broker gets nowhere
with a forged, an unsigned or a replayed trigger (docs/protocol.md, "Signed triggers")."""
import hashlib
import io
import secrets

import pytest

from tests.support.app import push_row, registered
from tests.support.devices import Listener, MqttWatcher, flash_listing, heartbeat_pred
from tests.support.waiting import wait_until
from webapp import keys
from webapp.db import get_db

pytestmark = pytest.mark.integration


def hashes(flash_dir):
    return {k: hashlib.sha256(v).hexdigest() for k, v in flash_listing(flash_dir).items()}


def flip_last(trigger):
    """The trigger with the last digit of its signature changed (always to another one)."""
    return (trigger[:-1] + ("1" if trigger[-1] == "0" else "0")).encode()


def test_signed_push_taken_forged_unsigned_and_replayed_triggers_refused(
        server, devices, unique, mosquitto):
    name = unique("signed")
    with server.app_context():
        key = keys.add(get_db(), name)
        get_db().commit()
    with MqttWatcher(mosquitto.port) as watcher:
        dev = devices(name, settings={"key": key, "confirm_after": 2})
        registered(server, name, lambda d: d.online and d.extended)
        hb0 = watcher.latest_json(name + "/status", heartbeat_pred())

        # the real push: the server signs it, the device takes it and keeps its counter
        mark = watcher.mark()
        data = b"VALUE = %d\n" % secrets.randbelow(10 ** 6)
        services = server.extensions["dcc_ota"].services
        with server.app_context():
            f = server.extensions["dcc_ota"].store.save(get_db(), io.BytesIO(data), "v.py")
            push_id = services.pushes.create(get_db(), name, [f])
        row = wait_until(lambda: (lambda r: r if r["state"] in ("done", "failed") else None)(
            push_row(server, push_id)), 60, what="the signed push")
        assert row["state"] == "done", (row["reason"], row["detail"], row["events"], dev.log_text())
        assert (dev.flash_dir / "v.py").read_bytes() == data
        real = watcher.wait_for(name + "/OTA", since=mark)  # captured off the broker
        assert b"|ctr=" in real and real.rsplit(b"|sig=", 1)[1].__len__() == 64
        ctr = int(real.split(b"|ctr=")[1].split(b"|")[0])
        assert (dev.flash_dir / ".ota" / "counter").read_text() == str(ctr)
        watcher.wait_json(name + "/status", heartbeat_pred(boot=hb0["boot"] + 1), since=mark,
                          timeout=30)

        # the attacker: a socket of its own, and the server's old transfer port taken over
        fields = real.decode().split("|")
        attacker = Listener()
        while attacker.port == int(fields[1]):  # the forged trigger must differ from the real
            attacker.close()
            attacker = Listener()
        try:
            old_port = Listener(int(fields[1]))
        except OSError:  # the port went to something else meanwhile: check it less
            old_port = None
        boots = dev.boots
        before = hashes(dev.flash_dir)
        token = secrets.token_hex(16)
        own = "127.0.0.1|%d|v.py|%s|5|%s" % (attacker.port, hashlib.sha1(b"EVIL\n").hexdigest(),
                                             token)
        forged = ("|".join(["127.0.0.1", str(attacker.port)] + fields[2:-1])
                  + "|" + fields[-1])  # the real signature on a new host:port
        attacks = [
            (forged.encode(), "bad signature"),
            (keys.sign(own, secrets.token_hex(32), ctr + 1).encode(), "bad signature"),
            (flip_last(keys.sign(own, key, ctr + 1, sha256=False)), "bad signature"),
            (own.encode(), "unsigned trigger"),
            (("127.0.0.1|%d|v.py|%s" % (attacker.port, "0" * 40)).encode(),
             "unsigned trigger"),  # the legacy form
            (real, "old counter"),  # replayed as captured
        ]
        try:
            for payload, detail in attacks:
                mark = watcher.mark()
                watcher.publish(name + "/OTA", payload)
                tok = payload.split(b"|")[5].decode() if payload.count(b"|") > 4 else ""
                st = watcher.wait_json(name + "/ota/status",
                                       lambda d: d.get("state") == "failed", since=mark)
                assert (st["reason"], st["detail"], st["token"]) == ("rejected", detail, tok), \
                    (payload, st)
            mark = watcher.mark()
            watcher.wait_json(name + "/status", heartbeat_pred(), since=mark, timeout=15)
            assert attacker.accepted == 0
            assert old_port is None or old_port.accepted == 0
        finally:
            attacker.close()
            if old_port:
                old_port.close()
        assert hashes(dev.flash_dir) == before  # nothing written: not even the counter
        assert dev.boots == boots
        assert "Traceback" not in dev.log_text()
