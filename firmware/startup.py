# What the runtime does once per boot: load settings, count the boot, hash the files.
# loader.main() imports this module, uses it and unloads it, so its bytecode does not
# stay in RAM (its compile also happens before the OTA receiver is loaded).
import json

DEFAULTS = {
    "id": "",  # "" = "esp-" + hex of machine.unique_id()
    "wifi_ssid": "",
    "wifi_password": "",
    "broker": "192.168.1.10",
    "port": 1883,
    "user": "",
    "password": "",
    "keepalive": 30,
    "heartbeat": 10,
    "plugins": ["lamp"],
    "lamp": {"relay_pin": 5, "button_pin": 0, "led_pin": 2, "led_active_low": True},
    "debug": False,
    "confirm_after": 30,  # seconds of healthy running that confirm an update
    "max_boots": 2,  # boots on probation before the safe-boot code rolls back
    "wdt_ms": 8000,  # watchdog timeout on probation (where the port's WDT takes one)
    "tls": False,  # MQTT over TLS (mqtt_tls.py; an ESP32, not an ESP8266)
    "ca": "",  # with tls: a CA certificate file on flash that the broker's must chain to
}
SETTINGS = "settings.json"
BOOT_FILE = ".boot_count"
FILES = ".files.json"  # runtime.FILES: the heartbeat sends it from the flash


def default_id():
    try:
        import machine
        from binascii import hexlify

        return "esp-" + hexlify(machine.unique_id()).decode()
    except (ImportError, AttributeError):
        return "esp"


# Defaults from code, overlaid by settings.json (dict values merged one level).
def load_settings(path=SETTINGS):
    cfg = {}
    for k, v in DEFAULTS.items():
        cfg[k] = dict(v) if isinstance(v, dict) else v
    try:
        with open(path) as f:
            user = json.load(f)
    except OSError:
        print("no", path, "- using defaults")
        user = {}
    except ValueError:
        print(path, "is not valid JSON - using defaults")
        user = {}
    for k, v in user.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    if not cfg["id"]:
        cfg["id"] = default_id()
    i = cfg["id"]
    if not 0 < len(i) <= 32 or not all(c.isalpha() or c.isdigit() or c in "_-" for c in i):
        raise ValueError("settings: id must be 1-32 of A-Z a-z 0-9 _ -")
    return cfg


# Add one to the boot counter on flash and return it.
def bump_boot():
    try:
        with open(BOOT_FILE) as f:
            n = int(f.read())
    except (OSError, ValueError):
        n = 0
    n += 1
    try:
        with open(BOOT_FILE, "w") as f:
            f.write(str(n))
    except OSError:  # a full flash must not stop the boot (a delete over the air frees it)
        pass
    return n


# The JSON object {name: sha1hex} for the flash root and one folder level, except
# settings.json and dot-names (.ota.part, .boot_count, ...): the heartbeat's "files". It is
# written to FILES, off the heap (a kilobyte on a full flash); None, or the text (bytes)
# when the flash has no room for it.
def file_hashes():
    import os
    import hashlib
    from binascii import hexlify

    buf = bytearray(256)
    mv = memoryview(buf)
    out = []

    def add(path):
        h = hashlib.sha1()
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == 256 else mv[:n])
        out.append(json.dumps(path) + ':"' + hexlify(h.digest()).decode() + '"')

    for e in os.ilistdir(""):
        name = e[0]
        if name[0] == "." or name == SETTINGS:
            continue
        if e[1] == 0x4000:
            for s in os.ilistdir(name):
                if s[0][0] != "." and s[1] == 0x8000:
                    add("%s/%s" % (name, s[0]))
        else:
            add(name)
    text = ("{" + ",".join(out) + "}").encode()
    try:
        with open(FILES, "wb") as f:
            f.write(text)
        return None
    except OSError:
        return text

