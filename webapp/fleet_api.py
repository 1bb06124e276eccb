"""The JSON API for fleets under /api/: releases (named, immutable file sets) and rollouts
(a release taken to many devices in waves). Routes parse, call a service, answer."""
from flask import Blueprint, current_app, jsonify, request

from . import extension
from .api import bp as api_bp, json_body
from .db import get_db
from .errors import json_error
from .filestore import FileTooLarge, NoSpace
from .names import BadName, check_display_name
from .releases import ReleaseError, folder_targets, left_out
from .rollout.service import RolloutRejected
from .rollout.store import Settings
from .schemas import NewRelease, NewRollout, parse
from .targets import NoDevices, Pick, pick

# nested in the API's blueprint (api.bp): its prefix, its error handlers, endpoints api.fleet.*
bp = Blueprint("fleet", __name__)


# -- releases --------------------------------------------------------------------------------

def release_dicts(db):
    """Every release (newest first) with `devices`: how many devices run it now."""
    ext = extension.of()
    running, matcher = {}, ext.releases.matcher(db)
    for device in ext.registry.all(db):
        name = matcher(device.files)
        running[name] = running.get(name, 0) + 1
    return [dict(r.to_dict(), devices=running.get(r.name, 0)) for r in ext.releases.all(db)]


@bp.get("/releases")
def releases():
    return jsonify(releases=release_dicts(get_db()))


@bp.get("/releases/<name>")
def release(name):
    found = extension.of().releases.get(get_db(), name)
    if found is None:
        return json_error(404, "not_found", "no release named %s" % name)
    return jsonify(found.to_dict())


class UploadRefused(Exception):
    """A folder's upload made no release: its `status`, `error` and message say why."""

    def __init__(self, status, error, message):
        super().__init__(message)
        self.status, self.error = status, error


def release_from_folder(db, name, delete_extra, uploads, paths=()):
    """A new release `name` of a folder's files: `uploads` (FileStorage), `paths` their
    paths in the folder ("lamp-v2/lib/x.py"; none: their file names). The API's and the
    page's; UploadRefused says why not."""
    ext = extension.of()
    uploads = [u for u in uploads if u.filename]
    if not uploads:
        raise UploadRefused(400, "no_file", "send the folder's files in multipart fields "
                                            "named 'file'")
    if paths and len(paths) != len(uploads):
        raise UploadRefused(400, "bad_request", "send one 'path' per 'file', or none")
    kept = [(u, p) for u, p in zip(uploads, paths or [u.filename for u in uploads])
            if not left_out(p)]
    uploads = [u for u, _ in kept]
    try:
        targets = folder_targets([p for _, p in kept])
        # all that can be checked before a byte is stored: a refused release stores nothing
        ext.releases.check(db, name, targets)
        for u, t in zip(uploads, targets):
            ext.releases.check_source(t, u.stream)
        # a display name for the store: the file's own name
        stored = ext.store.save_all(db, [(u.stream, check_display_name(t.rpartition("/")[2]))
                                         for u, t in zip(uploads, targets)])
        return ext.releases.create(db, name, list(zip(targets, stored)), delete_extra)
    except (BadName, ReleaseError) as exc:
        raise UploadRefused(400, "rejected", "no release was made: %s" % exc) from None
    except FileTooLarge as exc:
        raise UploadRefused(413, "too_large", "no release was made: %s" % exc) from None
    except NoSpace as exc:
        raise UploadRefused(507, "no_space", "no release was made: %s" % exc) from None


def said_yes(value):
    """A form's checkbox or flag: on when it says so."""
    return (value or "") in ("1", "true", "on", "yes")


@bp.post("/releases")
def create_release():
    """A release from stored files (JSON {"name", "files": {target: file}, "delete_extra"}) or
    from a folder uploaded as multipart (fields name, delete_extra, file..., and optionally
    path... giving each file's path in the folder)."""
    ext, db = extension.of(), get_db()
    if not request.is_json:
        try:
            made = release_from_folder(db, request.form.get("name", ""),
                                       said_yes(request.form.get("delete_extra")),
                                       request.files.getlist("file"),
                                       request.form.getlist("path"))
        except UploadRefused as exc:
            return json_error(exc.status, exc.error, str(exc))
        return jsonify(made.to_dict()), 201
    body = parse(NewRelease, json_body())
    try:
        ext.releases.check(db, body.name, list(body.files))  # its names first
        files = []
        for target, ref in body.files.items():
            stored = ext.store.find(db, ref)
            if stored is None:
                raise ReleaseError("no stored file matches %r (a SHA-256, a prefix of 6 or "
                                   "more of either hash, or a stored name)" % ref)
            files.append((target, stored))
        made = ext.releases.create(db, body.name, files, body.delete_extra)
    except ReleaseError as exc:
        return json_error(400, "rejected", "no release was made: %s" % exc)
    return jsonify(made.to_dict()), 201


@bp.delete("/releases/<name>")
def delete_release(name):
    ext = extension.of()
    if ext.releases.get(get_db(), name) is None:
        return json_error(404, "not_found", "no release named %s" % name)
    try:
        ext.releases.delete(get_db(), name)
    except ReleaseError as exc:
        return json_error(409, "in_use", str(exc))
    return "", 204


# -- rollouts --------------------------------------------------------------------------------

@bp.get("/rollouts")
def rollouts():
    return jsonify(rollouts=extension.of().rollouts.listing(get_db()))


@bp.get("/rollouts/<int:rollout_id>")
def rollout(rollout_id):
    found = extension.of().rollouts.describe(get_db(), rollout_id)
    if found is None:
        return json_error(404, "not_found", "no rollout %d" % rollout_id)
    return jsonify(found)


def start_rollout(db, body):
    """The id of a new rollout as `body` (schemas.NewRollout) asks: the API's and the page's.
    BadName, NoDevices or RolloutRejected say why not."""
    ext = extension.of()
    devices = pick(db, ext.registry, Pick(tuple(body.devices), tuple(body.tags),
                                          body.all_online))
    settings = Settings(
        canary=body.canary, wave_size=body.wave_size, concurrency=body.concurrency,
        threshold=body.threshold / 100.0, auto_continue=body.auto_continue,
        offline_wait=float(current_app.config["OTA_OFFLINE_WAIT"] if body.offline_wait is None
                           else body.offline_wait))
    return ext.rollouts.create(db, body.release, devices, settings)


@bp.post("/rollouts")
def create_rollout():
    """A rollout of a release to devices, tags or every online device, in waves."""
    body = parse(NewRollout, json_body())
    db = get_db()
    try:
        rollout_id = start_rollout(db, body)
    except (BadName, NoDevices, RolloutRejected) as exc:
        return json_error(400, "rejected", str(exc))
    return jsonify(extension.of().rollouts.describe(db, rollout_id)), 202


def _steer(rollout_id, action):
    ext, db = extension.of(), get_db()
    try:
        getattr(ext.rollouts, action)(db, rollout_id)
    except LookupError as exc:
        return json_error(404, "not_found", str(exc))
    except RolloutRejected as exc:
        return json_error(409, "conflict", str(exc))
    return jsonify(ext.rollouts.describe(db, rollout_id))


@bp.post("/rollouts/<int:rollout_id>/pause")
def pause_rollout(rollout_id):
    return _steer(rollout_id, "pause")


@bp.post("/rollouts/<int:rollout_id>/resume")
def resume_rollout(rollout_id):
    """Go on with a paused or stopped rollout, or past its healthy canary."""
    return _steer(rollout_id, "resume")


@bp.post("/rollouts/<int:rollout_id>/cancel")
def cancel_rollout(rollout_id):
    return _steer(rollout_id, "cancel")


api_bp.register_blueprint(bp)  # once, at import: before any app registers the API
