"""Per-device secret keys and signed triggers (docs/protocol.md, "Signed triggers")."""
import hashlib
import hmac
import ipaddress
import secrets
import time

from .device_rules import host_problem, port_problem
from .names import check_device_name
from .netinfo import advertise_host


class KeyExists(ValueError):
    """The device has a key already; rotating it means writing a new settings file to it."""


class BadWifi(ValueError):
    """A Wi-Fi network name or password a board cannot take."""


class BrokerUnusable(ValueError):
    """The broker address a device's settings.json would get is one the device cannot use."""


def add(db, name, rotate=False):
    """Make (or with rotate, replace) the device's key; returns it as 64 hex digits."""
    check_device_name(name)
    key = secrets.token_hex(32)
    if rotate:
        db.execute("INSERT INTO device_keys (name, key, created_at) VALUES (?,?,?)"
                   " ON CONFLICT (name) DO UPDATE SET key = excluded.key,"
                   " created_at = excluded.created_at", (name, key, time.time()))
        return key
    if db.execute("SELECT 1 FROM device_keys WHERE name = ?", (name,)).fetchone():
        raise KeyExists("%s has a key already; rotate it to make a new one" % name)
    db.execute("INSERT INTO device_keys (name, key, created_at) VALUES (?,?,?)",
               (name, key, time.time()))
    return key


def get(db, name):
    row = db.execute("SELECT key FROM device_keys WHERE name = ?", (name,)).fetchone()
    return row["key"] if row else None


def wifi(ssid, password):
    """{"wifi_ssid", "wifi_password"} for a settings.json (never stored), {} without an SSID;
    BadWifi for what a board cannot take (802.11: an SSID of 1 to 32 bytes; a WPA2
    passphrase of at most 64 printable characters), or a password without its network."""
    ssid, password = ssid or "", password or ""
    if not ssid:
        if password:
            raise BadWifi("a Wi-Fi password needs its network name (SSID)")
        return {}
    if len(ssid.encode()) > 32 or len(password) > 64 or not (ssid + password).isprintable():
        raise BadWifi("a Wi-Fi network name is at most 32 bytes and its password at most 64 "
                      "printable characters")
    return {"wifi_ssid": ssid, "wifi_password": password}


def never_heard(db):
    """Names of devices added (with a key) that have sent no heartbeat yet, sorted."""
    return [r[0] for r in db.execute(
        "SELECT name FROM device_keys WHERE name NOT IN (SELECT name FROM devices)"
        " ORDER BY name")]


def next_counter(db, name):
    """The next trigger counter for the device, already stored: never used twice, by any
    process sharing the database (the increment and its read are one write transaction)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("UPDATE device_keys SET counter = counter + 1 WHERE name = ?", (name,))
        counter = db.execute("SELECT counter FROM device_keys WHERE name = ?",
                             (name,)).fetchone()[0]
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return counter


def sign(trigger, key_hex, counter, sha256=True):
    """The trigger with `|ctr=N|sig=HEX` appended: an HMAC of all that comes before `|sig=`."""
    signed = "%s|ctr=%d" % (trigger, counter)
    digest = hmac.new(bytes.fromhex(key_hex), signed.encode(),
                      hashlib.sha256 if sha256 else hashlib.sha1).hexdigest()
    return "%s|sig=%s" % (signed, digest)


def settings(app, name, key):
    """The device's settings.json: its id and key, the broker as devices reach it, and the
    Wi-Fi to fill in. BrokerUnusable: see device_broker()."""
    host, port = device_broker(app)
    return {"id": name, "key": key, "broker": host, "port": port, "wifi_ssid": "",
            "wifi_password": "", "user": "", "password": ""}


def device_broker(app):
    """(host, port) of the broker as devices reach it. BrokerUnusable names the setting when a
    device could not use it: it connects there as to a trigger's host, so the trigger rules
    apply (an IPv6 literal is refused: no IPv6 on an ESP8266)."""
    cfg = app.config
    url = cfg.get("MQTT_BROKER_URL")
    if url and not _is_loopback(url):
        host_setting, host, port_setting = "MQTT_BROKER_URL", url, "MQTT_BROKER_PORT"
    else:
        # The broker runs on this server (embedded or local): devices reach it where they
        # reach us.
        host_setting, host = "OTA_ADVERTISE_HOST", cfg["OTA_ADVERTISE_HOST"] or advertise_host()
        port_setting = "MQTT_BROKER_PORT" if url else "OTA_EMBEDDED_BROKER_PORT"
    port = cfg[port_setting]
    why = host_problem(host)
    if why:
        raise BrokerUnusable("%s=%s cannot go into a device's settings.json: the device refuses "
                             "it (%s); give the broker's IPv4 address or host name"
                             % (host_setting, host, why))
    why = port_problem(port)
    if why:
        raise BrokerUnusable("%s=%s cannot go into a device's settings.json: the device refuses "
                             "it (%s)" % (port_setting, port, why))
    return host, port


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
