"""DCC-OTA server: a Flask app that pushes files to MicroPython devices over MQTT."""
import logging
import os
import secrets

from flask import Flask
from werkzeug.routing import IntegerConverter

from . import assets, config, db, extension
from .devices import Registry
from .filestore import FileStore
from .push.service import PushService
from .releases import Releases
from .rollout.service import RolloutService
from .schemas import SQLITE_MAX



def create_app(test_config=None):
    """Build the app. Services (broker, MQTT, pushes) are not started here: see services.py."""
    # OTA_DATA_DIR: the one folder for the database, the files, the session key and an
    # optional config.py (default: Flask's instance folder, instance/ in a checkout)
    data_dir = os.environ.get("OTA_DATA_DIR") or None
    app = Flask(__name__, instance_relative_config=True,
                instance_path=os.path.abspath(data_dir) if data_dir else None,
                template_folder=str(assets.folder("templates")),
                static_folder=str(assets.folder("static")))
    # the data folder holds the device keys and the session key: its owner's only
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    app.config.from_mapping(config.defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(config.from_environ(os.environ))
    if test_config is not None:
        app.config.update(test_config)
    # the session key: given, or made once and kept in the instance folder
    app.config["SECRET_KEY"] = (app.config.get("SECRET_KEY") or app.config["OTA_SECRET_KEY"]
                                or _instance_secret(app.instance_path))
    config.finish(app.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The embedded broker logs every packet at INFO; the limiter its storage set-up.
    for chatty in ("amqtt", "transitions", "flask-limiter"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    for name in config.unknown(os.environ):
        logging.getLogger(__name__).warning("%s is not a setting of DCC-OTA (README, "
                                            "Configuration): ignored", name)
    db.init_app(app)
    db.init_db(app.config["OTA_DATABASE"])
    registry = Registry(app.config["OTA_HEARTBEAT_MISSES"])
    store = FileStore(app.config["OTA_FILE_STORE"], app.config["OTA_MAX_UPLOAD"])
    pushes = PushService(app, registry, store)
    releases = Releases(store, registry)
    app.extensions[extension.KEY] = extension.DccOta(
        registry, store, pushes, releases, RolloutService(app, registry, releases, pushes))

    from . import (api, auth, cli, errors, fleet_api, fleet_cli, fleet_pages,  # noqa: F401
                   formatting, pages)
    app.url_map.converters["int"] = _RowId  # before any route is added
    auth.init_app(app)
    app.register_blueprint(api.bp)  # with fleet_api's routes nested in it
    app.register_blueprint(pages.bp)
    errors.init_app(app)
    formatting.init_app(app)
    app.cli.add_command(cli.ota)
    return app


class _RowId(IntegerConverter):
    """`<int:...>` in every route: 1 to 2**63-1, SQLite's integer range. A larger id cannot
    exist, so its URL matches no route: a 404, never an OverflowError from the query."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", SQLITE_MAX)
        super().__init__(url_map, *args, **kwargs)


def _instance_secret(instance_path):
    """A random key made once and kept in instance/secret_key, so sessions survive restarts."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path) as f:
            key = f.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
