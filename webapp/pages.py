"""Browser pages. Each works without JavaScript; the scripts in static/js make them live."""
import json

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)

from . import board_tools, extension, keys
from .auth import holds_secret
from .db import get_db
from .devices import PER_PAGE, NotForgettable, UnknownDevice, page_of, select, summary
from .filestore import FileInUse, FileTooLarge, NoSpace
from .manifest import PROTECTED, runtime_files
from .names import BadName, check_device_name
from .push import store
from .push.service import PushRejected
from .push.states import LIST_FILTERS
from .schemas import BadInput, DevicesQuery, parse, parse_ids
from .targets import NoDevices, Pick, pick, wants_of

bp = Blueprint("pages", __name__)


def _guarded():
    return sorted(set(PROTECTED) | runtime_files())


@bp.get("/")
def devices():
    """One page of the devices, searched, filtered and sorted by the query string
    (DevicesQuery): the same view /api/devices gives devices.js, which keeps it live."""
    db = get_db()
    try:
        q = parse(DevicesQuery, request.args.to_dict())
    except BadInput as exc:
        abort(400, str(exc))
    listing = extension.of().registry.listing(db)
    matching = select(listing.devices, q.q, q.tag, q.state, q.sort)
    per_page = q.per_page or PER_PAGE
    shown, page, pages = page_of(matching, q.page or 1, per_page)
    counts, tags = summary(listing.devices)
    return render_template("pages/devices.html", devices=shown, total=len(matching),
                           page=page, pages=pages, per_page=per_page, query=q, counts=counts,
                           tags=tags, running=extension.of().releases.matcher(db),
                           waiting=keys.never_heard(db), guarded=_guarded())


@bp.get("/device/<name>")
def device(name):
    """One device's card, with its files to delete one by one (the list leaves those to
    its script: twenty forms a card would make the list ten times heavier)."""
    d = extension.of().registry.get(get_db(), name)
    if d is None:
        abort(404, "no device named %s has sent a heartbeat" % name)
    return render_template("pages/device.html", d=d, guarded=_guarded(),
                           running=extension.of().releases.matcher(get_db()))


@bp.post("/devices/<name>/tags")
def set_tags(name):
    """The tags form: the device gets exactly the tags typed, separated by spaces or commas."""
    tags = request.form.get("tags", "").replace(",", " ").split()
    try:
        tags = extension.of().registry.set_tags(get_db(), name, tags)
    except UnknownDevice as exc:
        abort(404, str(exc))
    except ValueError as exc:
        flash("Tags not changed: %s." % exc, "error")
    else:
        flash("%s: %s." % (name, ", ".join(tags) or "no tags"), "ok")
    back = request.form.get("next", "")
    # only a path on this site: never an address elsewhere
    return redirect(back if back.startswith("/") and not back.startswith("//")
                    else url_for(".device", name=name))


@bp.post("/devices/<name>/forget")
def forget_device(name):
    """Forget an offline device (its record and its key; its push history stays)."""
    try:
        extension.of().registry.forget(get_db(), name)
    except NotForgettable as exc:
        flash("Not forgotten: %s." % exc, "error")
        return redirect(url_for(".devices"))
    flash("Forgot %s: its record and its key. Its push history stays; if it comes back it "
          "shows again, and needs a new key (Add a device) to take signed updates." % name, "ok")
    return redirect(url_for(".devices"))


@bp.post("/devices/<name>/delete")
def delete_on_device(name):
    """Delete one file on a device: a push of its own, journaled (a rollback restores it)."""
    target = request.form.get("name", "")
    try:
        push_id = extension.of().pushes.create(get_db(), name, [], None,
                                            request.form.get("force") == "yes", [target])
    except PushRejected as exc:
        flash("Not deleted: %s" % exc, "error")
        return redirect(url_for(".devices"))
    flash("Deleting %s on %s." % (target, name), "ok")
    return redirect(url_for(".timeline", ids=push_id))


@bp.route("/devices/add", methods=["GET", "POST"])
def add_device():
    """Make a device's key and show the settings.json to put on the board with the runtime."""
    if request.method == "GET":
        return render_template("pages/device_add.html")
    name = request.form.get("name", "").strip()
    try:
        wifi = _wifi(request.form)
        keys.device_broker(current_app)  # before the key: no settings.json it cannot use
        key = keys.add(get_db(), check_device_name(name), request.form.get("rotate") == "yes")
    except (BadName, keys.BadWifi, keys.KeyExists, keys.BrokerUnusable) as exc:
        flash(str(exc), "error")
        return render_template("pages/device_add.html", name=name,
                               wifi_ssid=request.form.get("wifi_ssid", "")), 400
    settings = dict(keys.settings(current_app, name, key), **wifi)
    holds_secret()
    return render_template("pages/device_added.html", name=name, wifi=wifi,
                           settings=json.dumps(settings, indent=2))


def _wifi(form):
    """The Wi-Fi of a form, for one settings.json only (keys.wifi: never stored)."""
    return keys.wifi(form.get("wifi_ssid", ""), form.get("wifi_password", ""))


@bp.route("/devices/<name>/settings.json", methods=["GET", "POST"])
def device_settings(name):
    """The device's settings.json as a download; POSTed with the Wi-Fi, with it in."""
    key = keys.get(get_db(), name)
    if key is None:
        abort(404, "%s was never added, so it has no key" % name)
    try:
        wifi = _wifi(request.form) if request.method == "POST" else {}
    except keys.BadWifi as exc:
        abort(400, str(exc))
    response = current_app.response_class(json.dumps(dict(keys.settings(current_app, name, key),
                                                          **wifi), indent=2) + "\n",
                                          mimetype="application/json")
    response.headers["Content-Disposition"] = "attachment; filename=settings.json"
    holds_secret()
    return response


@bp.get("/files")
def files():
    db = get_db()
    return render_template("pages/files.html", files=extension.of().store.all(db),
                           carriers=extension.of().registry.carriers(db),
                           max_upload=current_app.config["OTA_MAX_UPLOAD"])


@bp.post("/files")
def upload():
    """The form's own upload, for browsers without JavaScript."""
    uploads = [u for u in request.files.getlist("file") if u.filename]
    if not uploads:
        flash("Choose one or more files first.", "error")
        return redirect(url_for(".files"))
    try:  # all or nothing, as the API
        stored = extension.of().store.save_all(get_db(), [(u.stream, u.filename) for u in uploads])
    except (FileTooLarge, BadName, NoSpace) as exc:
        flash("Nothing was stored: %s." % exc, "error")
        return redirect(url_for(".files"))
    flash("Stored %s." % ", ".join(f.name for f in stored), "ok")
    return redirect(url_for(".files"))


@bp.post("/files/<sha256>/delete")
def delete_file(sha256):
    f = extension.of().store.get(get_db(), sha256)
    try:
        deleted = f is not None and extension.of().store.delete(get_db(), sha256)
    except FileInUse as exc:
        flash("Not deleted: %s." % exc, "error")
        return redirect(url_for(".files"))
    if not deleted:
        flash("That file is already gone.", "error")
    else:
        flash("Deleted %s." % f.name, "ok")
    return redirect(url_for(".files"))


@bp.get("/push")
def push_form():
    db = get_db()
    files = extension.of().store.all(db)
    try:  # what a precompiled push would make, and each .py file's size as .mpy
        made, release = board_tools.mpy_cross_makes()
        sizes = {f.sha256: extension.of().pushes.planner.compiled_size(f) for f in files
                 if f.name.endswith(".py")}
    except board_tools.MpyCrossMissing:
        made = release = None
        sizes = {}
    return render_template("pages/push.html", files=files,
                           devices=extension.of().registry.all(db),
                           chosen_files=request.args.getlist("file"),
                           chosen_devices=request.args.getlist("device"),
                           tags=extension.of().registry.all_tags(db),
                           chosen_tags=request.args.getlist("tag"),
                           protected=PROTECTED, mpy_made=made, mpy_release=release,
                           mpy_sizes=sizes)


@bp.post("/push")
def push():
    db = get_db()
    files, devices = request.form.getlist("file"), request.form.getlist("device")
    tags = request.form.getlist("tag")
    target = request.form.get("target", "").strip() or None
    again = url_for(".push_form", file=files, device=devices, tag=tags)
    if not files or not (devices or tags):
        flash("Pick at least one file and one device or tag.", "error")
        return redirect(again)
    ext = extension.of()
    try:
        devices = pick(db, ext.registry, Pick(tuple(devices), tuple(tags), False,
                                              request.form.get("only_needing") == "yes",
                                              wants_of(ext.store, db, files, target)))
    except (BadName, NoDevices) as exc:
        flash("Not pushed: %s." % exc, "error")
        return redirect(again)
    try:
        ids = extension.of().pushes.create_many(db, devices, files,
                                             target, request.form.get("force") == "yes",
                                             mpy=request.form.get("mpy") == "yes")
    except PushRejected as exc:
        flash("Not pushed: %s" % exc, "error")
        return redirect(again)
    flash("Pushing to %s." % ", ".join(devices), "ok")
    return redirect(url_for(".timeline", ids=",".join(map(str, ids))))


@bp.get("/pushes/<ids>")
def timeline(ids):
    try:
        wanted = parse_ids(ids)[:50]
    except BadInput:
        abort(404)  # no push can have such an id
    pushes = store.find_pushes(get_db(), ids=wanted, limit=len(wanted))
    if not pushes:
        abort(404, "no such push")
    return render_template("pages/timeline.html", pushes=pushes, ids=ids)


@bp.post("/pushes/<int:push_id>/cancel")
def cancel(push_id):
    if store.get_push(get_db(), push_id) is None:
        abort(404, "no push %d" % push_id)
    try:
        cancelled = extension.of().pushes.cancel(push_id)
    except PushRejected as exc:
        flash("Not cancelled: %s." % exc, "error")
        return redirect(url_for(".timeline", ids=push_id))
    if cancelled:
        flash("Cancelled push %d." % push_id, "ok")
    else:
        flash("Push %d had already ended." % push_id, "error")
    return redirect(url_for(".timeline", ids=push_id))


@bp.post("/pushes/<int:push_id>/retry")
def retry(push_id):
    try:
        new_id = extension.of().pushes.retry(get_db(), push_id)
    except PushRejected as exc:
        flash("Not retried: %s" % exc, "error")
        return redirect(url_for(".timeline", ids=push_id))
    flash("Retrying push %d as push %d." % (push_id, new_id), "ok")
    return redirect(url_for(".timeline", ids=new_id))


@bp.get("/history")
def history():
    device = request.args.get("device") or None
    outcome = request.args.get("outcome") if request.args.get("outcome") in LIST_FILTERS else None
    db = get_db()
    devices = store.pushed_devices(db)
    return render_template("pages/history.html", device=device, outcome=outcome,
                           devices=devices, outcomes=LIST_FILTERS,
                           pushes=store.find_pushes(db, device=device, state=outcome, limit=200))
