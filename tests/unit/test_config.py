import pytest

from webapp import create_app
from webapp.config import ConfigError, from_environ


def test_environment_settings_are_parsed():
    found = from_environ({"OTA_TRANSFER_PORTS": "50000-50010", "OTA_TRANSFER_TIMEOUT": "2.5",
                          "MQTT_BROKER_PORT": "1884", "MQTT_TLS_ENABLED": "yes", "HOME": "/x"})
    assert found == {"OTA_TRANSFER_PORTS": (50000, 50010), "OTA_TRANSFER_TIMEOUT": 2.5,
                     "MQTT_BROKER_PORT": 1884, "MQTT_TLS_ENABLED": True}


@pytest.mark.parametrize("name, value", [
    ("OTA_TRANSFER_PORTS", "60000-50000"),
    ("OTA_TRANSFER_PORTS", "http"),
    ("MQTT_BROKER_PORT", "eighteen"),
    ("OTA_TRANSFER_TIMEOUT", "soon"),
    ("MQTT_TLS_ENABLED", "maybe"),
])
def test_a_bad_setting_is_named_in_one_line(name, value):
    with pytest.raises(ConfigError) as err:
        from_environ({name: value})
    assert name in str(err.value) and "\n" not in str(err.value)


def test_environment_overrides_defaults_and_test_config_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("OTA_TRANSFER_TIMEOUT", "7")
    monkeypatch.setenv("OTA_ADVERTISE_HOST", "10.1.2.3")
    app = create_app({"OTA_DATABASE": str(tmp_path / "d.sqlite"),
                      "OTA_FILE_STORE": str(tmp_path / "f"), "OTA_ADVERTISE_HOST": "lamp-server"})
    assert app.config["OTA_TRANSFER_TIMEOUT"] == 7.0
    assert app.config["OTA_ADVERTISE_HOST"] == "lamp-server"
    assert app.config["OTA_TRANSFER_PORTS"] is None  # ephemeral by default


def test_nonsense_values_fail_at_start(tmp_path):
    with pytest.raises(ConfigError, match="OTA_TRANSFER_TIMEOUT"):
        create_app({"OTA_DATABASE": str(tmp_path / "d.sqlite"), "OTA_FILE_STORE": str(tmp_path),
                    "OTA_TRANSFER_TIMEOUT": 0})
