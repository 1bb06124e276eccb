"""What devices are told to connect to: the guess, the settings checked at start, and the
broker address written into a device's settings.json. No network: interfaces are faked."""
import json

import pytest

from webapp import create_app, keys, netinfo
from webapp.config import ConfigError
from webapp.db import get_db
from webapp.device_rules import host_problem
from webapp.transfer import bind_listener


@pytest.fixture
def interfaces(monkeypatch):
    """Fake this host's IPv4 interfaces (loopback last, as interface_addresses() sorts)."""
    def use(*addrs):
        monkeypatch.setattr(netinfo, "interface_addresses", lambda: list(addrs))
    return use


@pytest.mark.parametrize("local, found, guess", [
    ("2001:db8::5", ["192.0.2.9", "127.0.0.1"], "192.0.2.9"),  # IPv6 broker link: not used
    ("fe80::1%eth0", ["192.0.2.9", "127.0.0.1"], "192.0.2.9"),
    ("::ffff:192.0.2.7", ["192.0.2.9", "127.0.0.1"], "192.0.2.7"),  # IPv4-mapped: unwrapped
    ("192.0.2.7", ["192.0.2.9", "127.0.0.1"], "192.0.2.7"),
    ("127.0.0.1", ["192.0.2.9", "127.0.0.1"], "192.0.2.9"),  # local broker: the interface
    (None, ["192.0.2.9", "127.0.0.1"], "192.0.2.9"),
    ("::1", ["127.0.0.1"], "127.0.0.1"),                      # loopback only: nothing else up
    ("2001:db8::5", [], "127.0.0.1"),
])
def test_the_guess_is_an_address_the_device_accepts(interfaces, local, found, guess):
    interfaces(*found)
    assert netinfo.advertise_host(local) == guess
    assert host_problem(guess) is None


def make_app(tmp_path, **conf):
    return create_app(dict({"OTA_DATABASE": str(tmp_path / "d.sqlite"),
                            "OTA_FILE_STORE": str(tmp_path / "f")}, **conf))


@pytest.mark.parametrize("host, reason", [("::1", "bad host"), ("fd00::2", "bad host"),
                                          ("a" * 65, "bad host"),
                                          ("pi\u00e9", "non-ASCII or control byte")])
def test_an_advertised_host_the_device_refuses_stops_the_start(tmp_path, monkeypatch, host,
                                                               reason):
    monkeypatch.setenv("OTA_ADVERTISE_HOST", host)
    with pytest.raises(ConfigError) as err:
        make_app(tmp_path)
    message = str(err.value)
    assert message.startswith("OTA_ADVERTISE_HOST=") and "(%s)" % reason in message
    assert "\n" not in message


@pytest.mark.parametrize("conf, setting", [
    ({"OTA_TRANSFER_PORTS": (0, 10)}, "OTA_TRANSFER_PORTS"),   # from instance/config.py
    ({"OTA_TRANSFER_PORTS": (60000, 70000)}, "OTA_TRANSFER_PORTS"),
    ({"OTA_TRANSFER_PORTS": (50010, 50000)}, "OTA_TRANSFER_PORTS"),
    ({"OTA_TRANSFER_BIND": "fd00::2"}, "OTA_TRANSFER_BIND"),   # IPv6 socket, IPv4 devices
    ({"OTA_TRANSFER_BIND": "::1", "OTA_ADVERTISE_HOST": "127.0.0.1"}, "OTA_TRANSFER_BIND"),
    ({"OTA_TRANSFER_BIND": "127.0.0.1", "OTA_ADVERTISE_HOST": "192.0.2.2"},
     "OTA_TRANSFER_BIND"),
    ({"OTA_TRANSFER_BIND": "192.0.2.2", "OTA_ADVERTISE_HOST": "127.0.0.1"},
     "OTA_TRANSFER_BIND"),
    ({"OTA_TRANSFER_BIND": "127.0.0.1"}, "OTA_TRANSFER_BIND"),  # the guess is not loopback
])
def test_a_transfer_socket_devices_cannot_reach_stops_the_start(tmp_path, conf, setting):
    with pytest.raises(ConfigError) as err:
        make_app(tmp_path, **conf)
    assert str(err.value).startswith(setting + "=") and "\n" not in str(err.value)


@pytest.mark.parametrize("conf", [
    {"OTA_TRANSFER_BIND": "::"},
    {"OTA_TRANSFER_BIND": "127.0.0.1", "OTA_ADVERTISE_HOST": "127.0.0.1"},
    {"OTA_TRANSFER_BIND": "192.0.2.2", "OTA_ADVERTISE_HOST": "203.0.113.4"},  # maybe NAT
    {"OTA_TRANSFER_BIND": "0.0.0.0", "OTA_ADVERTISE_HOST": "pi.local"},
    {"OTA_TRANSFER_PORTS": [50000, 50100]},
])
def test_settings_devices_can_use_are_kept(tmp_path, conf):
    app = make_app(tmp_path, **conf)
    for name, value in conf.items():
        assert app.config[name] == (tuple(value) if isinstance(value, list) else value)


def test_a_transfer_bind_of_every_address_listens_on_ipv4():
    with bind_listener("::", None) as sock:
        assert sock.getsockname()[0] == "0.0.0.0"


def test_device_add_refuses_an_ipv6_broker_and_makes_no_key(tmp_path):
    app = make_app(tmp_path, MQTT_BROKER_URL="fd00::10")
    result = app.test_cli_runner().invoke(args=["ota", "device-add", "lamp"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "cannot add lamp: MQTT_BROKER_URL=fd00::10 cannot go into a device's settings.json: "
        "the device refuses it (bad host); give the broker's IPv4 address or host name"]
    with app.app_context():
        assert keys.get(get_db(), "lamp") is None


@pytest.mark.parametrize("url, broker", [("mqtt.lan", "mqtt.lan"), ("192.0.2.20", "192.0.2.20"),
                                         ("::1", "192.0.2.9")])  # local broker: where we are
def test_device_add_writes_a_broker_the_device_can_use(tmp_path, interfaces, url, broker):
    interfaces("192.0.2.9", "127.0.0.1")
    app = make_app(tmp_path, MQTT_BROKER_URL=url, MQTT_BROKER_PORT=1884)
    result = app.test_cli_runner().invoke(args=["ota", "device-add", "lamp"])
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)
    assert (settings["broker"], settings["port"]) == (broker, 1884)


def test_a_broker_port_the_devices_refuse_stops_the_start(tmp_path, monkeypatch):
    for name in ("MQTT_BROKER_PORT", "OTA_EMBEDDED_BROKER_PORT"):
        for bad in ("0", "65536"):
            monkeypatch.setenv(name, bad)
            with pytest.raises(ConfigError) as info:
                create_app({"OTA_DATABASE": str(tmp_path / "d.sqlite"),
                            "OTA_FILE_STORE": str(tmp_path / "f")})
            assert str(info.value).startswith("%s=%s is refused by the devices (bad port)"
                                              % (name, bad))
        monkeypatch.delenv(name)
