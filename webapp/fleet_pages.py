"""The browser pages for fleets: releases and rollouts (fleet_api does the work; these parse
forms, flash and render). Every page works without JavaScript; the scripts make it live."""
import math

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from . import extension, fleet_api
from .db import get_db
from .names import BadName
from .pages import bp as pages_bp
from .releases import ReleaseError
from .rollout import states as rollout_states
from .rollout.service import RolloutRejected
from .schemas import BadInput, NewRollout, parse
from .targets import NoDevices

# nested in the pages' blueprint (pages.bp): its login guard and templates, endpoints
# pages.fleet.*
bp = Blueprint("fleet", __name__)


@bp.get("/releases")
def releases():
    return render_template("pages/releases.html", releases=fleet_api.release_dicts(get_db()),
                           max_upload=current_app.config["OTA_MAX_UPLOAD"])


@bp.post("/releases")
def make_release():
    """The folder form's own upload, for browsers without JavaScript."""
    try:
        made = fleet_api.release_from_folder(
            get_db(), request.form.get("name", "").strip(),
            fleet_api.said_yes(request.form.get("delete_extra")), request.files.getlist("file"))
    except fleet_api.UploadRefused as exc:
        flash("No release was made: %s" % str(exc).removeprefix("no release was made: "),
              "error")
        return redirect(url_for(".releases"))
    flash("Made release %s: %d file%s." % (made.name, len(made.files),
                                             "" if len(made.files) == 1 else "s"), "ok")
    return redirect(url_for(".releases"))


@bp.post("/releases/<name>/delete")
def delete_release(name):
    """Delete a release no rollout took (the API's refusal is flashed as it says it)."""
    try:
        gone = extension.of().releases.delete(get_db(), name)
        flash("Deleted release %s. Its files stay stored." % gone.name, "ok")
    except ReleaseError as exc:
        flash("Not deleted: %s." % exc, "error")
    return redirect(url_for(".releases"))


@bp.get("/rollouts")
def rollouts():
    return render_template("pages/rollouts.html",
                           rollouts=extension.of().rollouts.listing(get_db()))


@bp.get("/rollouts/new")
def rollout_form():
    db = get_db()
    ext = extension.of()
    return render_template("pages/rollout_new.html", releases=ext.releases.all(db),
                           chosen=request.args.get("release"), devices=ext.registry.all(db),
                           tags=ext.registry.all_tags(db))


_NUMBERS = ("canary", "wave_size", "concurrency", "threshold")


def _rollout_body(form):
    """The form as the API's body (schemas.NewRollout); BadInput names a field it refuses."""
    body = {"release": form.get("release", ""), "devices": form.getlist("device"),
            "tags": form.getlist("tag"), "all_online": form.get("all_online") == "yes",
            "auto_continue": form.get("auto_continue") == "yes"}
    wait = form.get("offline_wait_min", "").strip()
    for name, text, scale in [(n, form.get(n, "").strip(), None) for n in _NUMBERS] + [
            ("offline_wait", wait, 60)]:
        if not text:
            continue  # the API's default
        try:
            value = float(text)
            if not math.isfinite(value):  # float() takes "nan" and "inf"
                raise ValueError(text)
        except ValueError:
            raise BadInput("%s: %r is not a number" % (name, text)) from None
        if scale:  # the form asks in minutes: say its bounds in minutes too
            if not 0 <= value <= 30 * 24 * 60:
                raise BadInput("offline wait: 0 to %d minutes (30 days)" % (30 * 24 * 60))
            body[name] = value * scale
        else:
            body[name] = int(value) if value.is_integer() else value
    return parse(NewRollout, body)


@bp.post("/rollouts")
def start_rollout():
    again = url_for(".rollout_form", release=request.form.get("release"))
    try:
        rollout_id = fleet_api.start_rollout(get_db(), _rollout_body(request.form))
    except (BadInput, BadName, NoDevices, RolloutRejected) as exc:
        flash("Not started: %s." % exc, "error")
        return redirect(again)
    flash("Rollout %d started." % rollout_id, "ok")
    return redirect(url_for(".rollout", rollout_id=rollout_id))


@bp.get("/rollouts/<int:rollout_id>")
def rollout(rollout_id):
    shown = extension.of().rollouts.describe(get_db(), rollout_id)
    if shown is None:
        abort(404, "no rollout %d" % rollout_id)
    waves = {}
    for d in shown["devices"]:
        waves.setdefault(d["wave"], []).append(d)
    return render_template("pages/rollout.html", rollout=shown, waves=waves,
                           states=rollout_states.for_scripts())


_STEERED = {"pause": "Paused.", "resume": "Going on.", "cancel": "Cancelled."}


@bp.post("/rollouts/<int:rollout_id>/<action>")
def steer_rollout(rollout_id, action):
    """Pause, resume (a go past the canary) or cancel, for browsers without JavaScript."""
    if action not in _STEERED:
        abort(404)
    try:
        getattr(extension.of().rollouts, action)(get_db(), rollout_id)
    except LookupError as exc:
        abort(404, str(exc))
    except RolloutRejected as exc:
        flash("Not done: %s." % exc, "error")
    else:
        flash(_STEERED[action], "ok")
    return redirect(url_for(".rollout", rollout_id=rollout_id))


pages_bp.register_blueprint(bp)  # once, at import: before any app registers the pages
