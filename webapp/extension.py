"""What a DCC-OTA app holds: one typed object in app.extensions["dcc_ota"] (Flask's place
for an extension's state), found with `of(app)`."""
from dataclasses import dataclass
from typing import Optional

from flask import current_app

from .devices import Registry
from .filestore import FileStore
from .push.service import PushService
from .releases import Releases
from .rollout.service import RolloutService

KEY = "dcc_ota"


@dataclass
class DccOta:
    """registry, store, pushes, releases and rollouts are made with the app; services (services.Services: the
    broker and the bus, which start the pushes) only once started in this process
    (services.start_services), else None."""

    registry: Registry
    store: FileStore
    pushes: PushService
    releases: Releases
    rollouts: RolloutService
    services: Optional["Services"] = None  # noqa: F821 (services.py imports this module)


def of(app=None):
    """The app's DccOta (default: the current app's)."""
    return (app or current_app).extensions[KEY]
