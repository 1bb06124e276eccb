"""Where the project's top-level folders are found: `templates/`, `static/` and `firmware/`.

In a checkout they sit beside `webapp/` (the layout is fixed); an installed wheel ships them
as package data under `webapp/_assets/` (pyproject.toml maps each folder there). One answer
for the app, the device rules, the file-name rules and the simulator.
"""
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_PLACES = (_HERE / "_assets", _HERE.parent)  # installed, then the checkout


class AssetsMissing(RuntimeError):
    """Neither an installed copy nor a checkout holds the folder."""


def folder(name):
    """The Path of `templates`, `static` or `firmware`; AssetsMissing if there is none."""
    for place in _PLACES:
        path = place / name
        if path.is_dir():
            return path
    raise AssetsMissing("%s/ is neither installed with the package (%s) nor beside it (%s): "
                        "reinstall dcc-ota" % (name, _PLACES[0], _PLACES[1]))
