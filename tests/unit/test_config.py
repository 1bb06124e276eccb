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


def test_starting_the_services_never_rewrites_the_configuration(tmp_path):
    """The broker address is resolved once (services.broker_address) and kept by the bus; the
    app's configuration stays what it was read as, so the settings a device is given still
    name the embedded broker's port, not the address this process happened to use."""
    from tests.support.mosquitto import free_port
    from webapp.services import start_services, stop_services

    port = free_port()
    app = create_app({"OTA_DATABASE": str(tmp_path / "db.sqlite"),
                      "OTA_FILE_STORE": str(tmp_path / "files"),
                      "OTA_EMBEDDED_BROKER_PORT": port, "TESTING": True})
    before = dict(app.config)
    services = start_services(app, role="cli")  # a CLI run: the server's broker (none here)
    try:
        assert services.bus.where() == "127.0.0.1:%d" % port
        assert dict(app.config) == before
        assert app.config["MQTT_BROKER_URL"] is None
    finally:
        stop_services(app)
    assert app.extensions["dcc_ota"].services is None


def test_one_data_folder_holds_the_database_the_files_and_the_session_key(tmp_path, monkeypatch):
    """OTA_DATA_DIR (deploy/dcc-ota.env sets /var/lib/dcc-ota): everything the server writes."""
    data = tmp_path / "var-lib-dcc-ota"
    monkeypatch.setenv("OTA_DATA_DIR", str(data))
    app = create_app()
    assert app.config["OTA_DATABASE"] == str(data / "dcc-ota.sqlite")
    assert app.config["OTA_FILE_STORE"] == str(data / "files")
    assert sorted(p.name for p in data.iterdir()) == ["dcc-ota.sqlite", "files", "secret_key"]


def test_a_new_data_folder_and_database_are_their_owners_only(tmp_path, monkeypatch):
    """They hold the device keys, the token hashes and the session key."""
    data = tmp_path / "data"
    monkeypatch.setenv("OTA_DATA_DIR", str(data))
    create_app()
    assert oct(data.stat().st_mode & 0o777) == oct(0o700)
    assert oct((data / "dcc-ota.sqlite").stat().st_mode & 0o777) == oct(0o600)
