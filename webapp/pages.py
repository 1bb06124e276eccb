"""Browser pages."""
from flask import Blueprint, current_app, render_template

from .db import get_db

bp = Blueprint("pages", __name__)


@bp.get("/")
def devices():
    ext = current_app.extensions["dcc_ota"]
    return render_template("pages/devices.html", devices=ext["registry"].all(get_db()),
                           files=ext["store"].all(get_db()))
