"""Hostile triggers against real simulated devices (firmware/ on MicroPython, real mosquitto):
thousands of random and mutated ID/OTA payloads. A device must never crash or restart, never
connect anywhere, never write or delete a file, and must stay online (docs/security.md)."""
import hashlib
import random
import secrets
import time

import pytest

from dcc_sim.launcher import SimDevice
from tests.support.devices import Listener, MqttWatcher, flash_listing, heartbeat_pred
from tests.support.firmware import load
from webapp import keys

pytestmark = pytest.mark.integration

ota_trigger = load("ota_trigger")  # the device's own parser, to keep only malformed ones

KEY = secrets.token_hex(32)
STORED_COUNTER = 1000  # seeded on the keyed device: valid signatures up to it are replays
HOSTILE_NAMES = [
    "../boot.py", "/main.py", "a/b/c.py", ".ota/counter", ".ota.part", ".ota/journal.json",
    "settings.json", "lib/../x.py", "..", ".", "a//b", "lib/", "/", "x" * 65, "lib/.hidden",
    "boot.py", "safeboot.py", "main.py\x00", "m\tin.py", "ma in.py", "\u00e9t\u00e9.py",
    "C:\\boot.py", "lib\\..\\boot.py", "%2e%2e/boot.py", "main.py;rm -rf /", "bundle",
]
BAD_PORTS = ["0", "65536", "-1", "99999999", "", "1e3", " 80", "0x50", "+80", "\uff18\uff10",
             "123456789", "80 ", "8O"]


def base_fields(port, rng):
    data = rng.randbytes(rng.randrange(1, 3000))
    return ["127.0.0.1", str(port), rng.choice(["main.py", "lib/util.py", "lamp.py"]),
            hashlib.sha1(data).hexdigest(), str(len(data)), secrets.token_hex(16)]


def mutate(fields, rng):
    """One hostile variant of a trigger's fields (a list of str), returned as bytes."""
    f = list(fields)
    kind = rng.randrange(9)
    if kind == 0:  # wrong field count
        n = rng.choice([0, 1, 2, 3, 5, 7, 12, 40])
        f = (f + ["x=1"] * 40)[:n]
    elif kind == 1:  # a huge field (past 1024 bytes the client drops the message unread)
        f[rng.randrange(len(f))] = "A" * rng.choice([65, 200, 1000, 1100, 4000])
    elif kind == 2:  # bad port
        f[1] = rng.choice(BAD_PORTS)
    elif kind == 3:  # hostile file name
        f[2] = rng.choice(HOSTILE_NAMES)
    elif kind == 4:  # bad sha1 / size / token
        i = rng.choice([3, 4, 5])
        f[i] = rng.choice(["", "g" * len(f[i]), f[i].upper(), f[i][:-1], f[i] + "0", "-1",
                           "16777217", "9" * 9])
    elif kind == 5:  # hostile key=value fields
        f += rng.sample(["=", "=x", "k", "bundle=0", "bundle=9", "bundle=1", "force=1",
                         "ctr=", "sig=", "ctr=1", "sig=" + "0" * 64, "a=" + "b" * 300], 2)
    out = "|".join(f).encode("utf-8")
    if kind == 6:  # non-ASCII, control or space bytes spliced in
        i = rng.randrange(len(out) + 1)
        out = out[:i] + bytes(rng.choice([0, 9, 10, 32, 127, 128, 195, 255])
                              for _ in range(rng.randrange(1, 4))) + out[i:]
    elif kind == 7:  # random bytes
        out = rng.randbytes(rng.randrange(0, 300))
    elif kind == 8:  # bytes flipped
        b = bytearray(out)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        out = bytes(b)
    return out


def parses(payload):
    try:
        ota_trigger.parse(payload)
        return True
    except ota_trigger.OTAError:
        return False


def unkeyed_payloads(port, n, rng):
    """Payloads a device without a key must refuse: all of them malformed (one that parses
    would rightly make such a device connect)."""
    out = []
    while len(out) < n:
        p = mutate(base_fields(port, rng), rng)
        if not parses(p):
            out.append(p)
    return out


def keyed_payloads(port, n, rng):
    """Payloads a keyed device must refuse: the malformed ones above, and well-formed ones
    unsigned, forged (wrong key, changed field, changed or bad signature, SHA-1 or SHA-256)
    or replayed (a valid signature with a counter not above the stored one)."""
    out = unkeyed_payloads(port, n // 2, rng)
    while len(out) < n:
        f = base_fields(port, rng)
        if rng.random() < 0.2:
            f[2] = rng.choice(["boot.py", "safeboot.py"])
            f.append("force=1")
        trig = "|".join(f)
        sha256 = rng.random() < 0.5
        kind = rng.randrange(6)
        if kind == 0:
            p = trig  # unsigned
        elif kind == 1:
            p = keys.sign(trig, secrets.token_hex(32), STORED_COUNTER + 5, sha256)  # wrong key
        elif kind == 2:  # a signed field changed afterwards
            p = keys.sign(trig, KEY, STORED_COUNTER + 5, sha256).replace(
                "127.0.0.1|", "127.0.0.2|")
        elif kind == 3:  # the counter raised afterwards
            p = keys.sign(trig, KEY, STORED_COUNTER, sha256).replace(
                "|ctr=%d|" % STORED_COUNTER, "|ctr=%d|" % (STORED_COUNTER + 1))
        elif kind == 4:  # replayed: a real signature, an old counter
            p = keys.sign(trig, KEY, rng.randrange(1, STORED_COUNTER + 1), sha256)
        else:  # signature bytes garbled
            s = keys.sign(trig, KEY, STORED_COUNTER + 5, sha256)
            i = rng.randrange(len(s) - 40, len(s))
            p = s[:i] + rng.choice("0123456789abcdefG") + s[i + 1:]
            if p == s:
                continue
        out.append(p.encode())
    return out


def fuzz(device, watcher, payloads, listener):
    name = device.name
    boots = device.boots
    before = {k: hashlib.sha256(v).hexdigest() for k, v in flash_listing(device.flash_dir).items()}
    # every payload the MQTT client keeps (at most 1024 bytes) gets one failed status; send
    # in batches and wait for them, so the broker never queues thousands for a slow device
    start = watcher.mark()
    sent_kept = 0
    for i in range(0, len(payloads), 100):
        batch = payloads[i:i + 100]
        for p in batch:
            watcher.client.publish(name + "/OTA", p, qos=0)
        sent_kept += sum(1 for p in batch if len(p) <= 1024)
        deadline = time.monotonic() + 30
        while len(watcher.all_json(name + "/ota/status", since=start)) < sent_kept:
            assert time.monotonic() < deadline, "the device stopped answering triggers"
            time.sleep(0.02)
    statuses = watcher.all_json(name + "/ota/status", since=start)
    mark = watcher.mark()
    # still online: a fresh heartbeat after the fuzz, from the same process
    watcher.wait_json(name + "/status", heartbeat_pred(), since=mark, timeout=15)
    after = {k: hashlib.sha256(v).hexdigest() for k, v in flash_listing(device.flash_dir).items()}
    assert after == before  # no file written, changed or deleted, no .ota.part or temp left
    assert device.boots == boots
    log = device.log_text()
    assert "Traceback" not in log and "MemoryError" not in log
    assert listener.accepted == 0  # it never connected anywhere
    return statuses


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def run_device(tmp_path, mosquitto, name, settings, counter=None):
    flash = tmp_path / name
    dev = SimDevice(name, flash, broker_port=mosquitto.port, heartbeat=2, settings=settings)
    dev.seed()
    if counter is not None:
        (flash / ".ota").mkdir()
        (flash / ".ota" / "counter").write_text(str(counter))
    return dev


def fuzzed(mosquitto, tmp_path, name, settings, payloads, listener, counter=None):
    """A device (run_device) sent every payload (fuzz), then stopped: (dev, statuses)."""
    with MqttWatcher(mosquitto.port) as watcher:
        dev = run_device(tmp_path, mosquitto, name, settings, counter).start()
        try:
            watcher.wait_json(name + "/status", heartbeat_pred(), timeout=20)
            return dev, fuzz(dev, watcher, payloads, listener)
        finally:
            dev.stop()


def test_a_device_without_a_key_survives_2000_hostile_triggers(mosquitto, tmp_path, listener):
    rng = random.Random(6)
    name = "fuzz-" + secrets.token_hex(3)
    payloads = unkeyed_payloads(listener.port, 2000, rng)
    _, statuses = fuzzed(mosquitto, tmp_path, name, {}, payloads, listener)
    assert {s["state"] for s in statuses} == {"failed"}
    assert {s["reason"] for s in statuses} == {"malformed"}


def test_a_keyed_device_survives_2000_forged_and_replayed_triggers(mosquitto, tmp_path,
                                                                    listener):
    rng = random.Random(66)
    name = "fuzzk-" + secrets.token_hex(3)
    payloads = keyed_payloads(listener.port, 2000, rng)
    dev, statuses = fuzzed(mosquitto, tmp_path, name, {"key": KEY}, payloads, listener,
                           STORED_COUNTER)
    assert {s["state"] for s in statuses} == {"failed"}
    rejected = [s["detail"] for s in statuses if s["reason"] == "rejected"]
    # the well-formed half: each refused by the signature check, before anything else
    assert set(rejected) == {"unsigned trigger", "bad signature", "old counter"}
    assert len(rejected) == 1000
    assert (dev.flash_dir / ".ota" / "counter").read_text() == str(STORED_COUNTER)
