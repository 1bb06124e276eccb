"""The JSON API under /api/: files, devices, pushes. Routes parse, call a service, answer."""
import json
import time

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from . import extension, keys
from . import health as health_checks
from .auth import holds_secret
from .bus import BusError
from .db import get_db
from .errors import json_error
from .devices import PER_PAGE, NotForgettable, UnknownDevice, page_of, select, summary
from .filestore import FileInUse, FileTooLarge
from .names import BadName, check_device_name, is_device_name
from .payloads import loads
from .push.service import NotRunning, PushRejected
from .push.store import find_pushes, get_push
from .targets import AllUpToDate, NoDevices, Pick, pick, wants_of
from .schemas import BadInput, DeviceTags, DevicesQuery, NewDevice, NewPush, PushesQuery, parse

MAX_COMMAND = 512
# A write stamped just before a poll may commit just after it: the next poll looks back this
# far too. Sending a row twice is harmless; missing one is not.
CURSOR_OVERLAP = 1.0

bp = Blueprint("api", __name__, url_prefix="/api")


def json_body():
    """The request's JSON body (any JSON type), None when it is not sent as JSON; BadInput when
    it is not strict JSON (payloads.loads: too deep, NaN, a key twice, a lone surrogate)."""
    if not request.is_json:
        return None
    try:
        return loads(request.get_data(cache=True), "the JSON body")
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _query(model):
    return parse(model, request.args.to_dict())


@bp.errorhandler(BadInput)
def _bad_input(exc):
    return json_error(400, "bad_request", str(exc))


def _file_dict(f):
    return {"sha256": f.sha256, "sha1": f.sha1, "size": f.size, "name": f.name,
            "uploaded_at": f.uploaded_at}


@bp.get("/health")
def health():
    """200 when the server is working (broker connected, database answering, file store
    writable with room for an upload), 503 when it runs but one of them is not (health.py).
    Without a login only the yes/no of each check: addresses, names and figures are for
    users."""
    found = health_checks.check(current_app.config)
    checks = {k: found[k] for k in ("broker", "database", "file_store")}
    working = all(checks.values())
    body = {"running": True, "working": working, "ok": working, "checks": checks,
            "mqtt_connected": checks["broker"]}
    # who asks is known from the database: without one, the answer is the public one
    if checks["database"] and current_user.is_authenticated:
        body.update(broker=found["broker_address"], mqtt_refused=found["broker_refused"],
                    file_store_free=found["file_store_free"], errors=found["errors"])
    return jsonify(body), 200 if working else 503


@bp.get("/devices")
def devices():
    """All devices, or with ?since=CURSOR only those that changed; poll again with `cursor`.
    A view (q, tag, state, sort, page, per_page) answers one page of the devices that match,
    in order: `view` names them all, `devices` holds those of them that changed."""
    now = time.time()
    q = _query(DevicesQuery)
    db = get_db()
    registry = extension.of().registry
    listing = registry.listing(db, now)
    found = listing.devices if q.since is None else listing.changed(q.since)
    extra = {}
    if q.wants_view():
        matching = select(listing.devices, q.q, q.tag, q.state, q.sort)
        shown, page, pages = page_of(matching, q.page or 1, q.per_page or PER_PAGE)
        names = {d.name for d in shown}
        found = [d for d in found if d.name in names]
        counts, tags = summary(listing.devices)
        extra = {"view": {"names": [d.name for d in shown], "total": len(matching),
                          "page": page, "pages": pages, "per_page": q.per_page or PER_PAGE},
                 "counts": counts, "tags": tags}
    gone = [] if q.since is None else registry.forgotten_since(db, q.since)
    # the devices' JSON is spliced in as made once per change (Listing.to_json)
    files_since = q.since if q.files == "changed" else None
    running = extension.of().releases.matcher(db)
    body = '{"devices":%s,%s}' % (listing.to_json(found, files_since, running), json.dumps(
        dict(extra, forgotten=gone, cursor=now - CURSOR_OVERLAP), separators=(",", ":"))[1:-1])
    return current_app.response_class(body + "\n", mimetype="application/json")


@bp.post("/devices/<name>/forget")
def forget_device(name):
    """Forget an offline device: its record and its key go, its push history stays."""
    try:
        extension.of().registry.forget(get_db(), name)
    except NotForgettable as exc:
        status, error = (404, "not_found") if str(exc).startswith("no device") else (
            409, "online")
        return json_error(status, error, str(exc))
    return jsonify(forgotten=name)


@bp.put("/devices/<name>/tags")
def set_device_tags(name):
    """Give a device exactly these tags: {"tags": ["kitchen", "lamp"]}."""
    body = parse(DeviceTags, json_body())
    try:
        tags = extension.of().registry.set_tags(get_db(), name, body.tags)
    except UnknownDevice as exc:
        return json_error(404, "not_found", str(exc))
    except ValueError as exc:
        return json_error(400, "bad_tag", str(exc))
    return jsonify(name=name, tags=tags)


@bp.get("/tags")
def tags():
    """Every tag in use and how many devices carry it: {"tags": {"kitchen": 3}}."""
    return jsonify(tags=extension.of().registry.all_tags(get_db()))


@bp.post("/devices")
def add_device():
    """Make a device's secret key; answers the settings.json to put on the board."""
    body = parse(NewDevice, json_body())
    name = body.name
    try:
        keys.device_broker(current_app)  # before the key: no settings.json it cannot use
        key = keys.add(get_db(), check_device_name(name), rotate=body.rotate)
    except (BadName, keys.KeyExists, keys.BrokerUnusable) as exc:
        return json_error(400, "rejected", str(exc))
    holds_secret()
    return jsonify(name=name, settings=keys.settings(current_app, name, key)), 201


@bp.get("/devices/<name>/settings")
def device_settings(name):
    key = keys.get(get_db(), name)
    if key is None:
        return json_error(404, "not_found", "%r was never added, so it has no key" % name)
    holds_secret()
    return jsonify(keys.settings(current_app, name, key))


@bp.get("/devices/<name>")
def device(name):
    d = extension.of().registry.get(get_db(), name)
    if d is None:
        return json_error(404, "not_found", "no device named %r has sent a heartbeat" % name)
    return jsonify(_device_dict(d, extension.of().releases.matcher(get_db())))


def _device_dict(device, running):
    """A device as the API shows it: with `release`, the release it runs (running(files):
    Releases.matcher; "modified" when none, None when there are no releases)."""
    return dict(device.to_dict(), release=running(device.files))


@bp.post("/devices/<name>/plugins/<plugin>")
def plugin_command(name, plugin):
    """Send a command to a plugin: the JSON body goes to NAME/PLUGIN/set as it is."""
    if not (is_device_name(name) and is_device_name(plugin)):
        return json_error(400, "bad_name", "device and plugin names are letters, digits, _ and -")
    body = json_body()
    if not isinstance(body, dict) or not body:
        return json_error(400, "bad_request", 'send a JSON object, e.g. {"led": false}')
    payload = json.dumps(body, separators=(",", ":"))
    if len(payload) > MAX_COMMAND:
        return json_error(400, "too_large", "a command is at most %d bytes" % MAX_COMMAND)
    try:
        _bus().publish("%s/%s/set" % (name, plugin), payload)
    except BusError as exc:
        return json_error(503, "broker_unreachable", str(exc))
    return jsonify(sent=payload), 202


@bp.get("/files")
def files():
    db = get_db()
    carriers = extension.of().registry.carriers(db)
    return jsonify(files=[dict(_file_dict(f), devices=carriers.get(f.sha1, []))
                          for f in extension.of().store.all(db)])


@bp.delete("/files/<sha256>")
def delete_file(sha256):
    try:
        deleted = extension.of().store.delete(get_db(), sha256.lower())
    except FileInUse as exc:
        return json_error(409, "in_use", str(exc))
    if not deleted:
        return json_error(404, "not_found", "no stored file %s" % sha256)
    return "", 204


@bp.post("/files")
def upload():
    uploads = request.files.getlist("file")
    if not uploads:
        return json_error(400, "no_file", "send the file in a multipart field named 'file'")
    # all or nothing: one bad file of several stores none of them
    try:
        stored = extension.of().store.save_all(get_db(), [(u.stream, u.filename or "unnamed")
                                                     for u in uploads])
    except FileTooLarge as exc:
        return json_error(413, "too_large", "nothing was stored: %s" % exc)
    except BadName as exc:
        return json_error(400, "bad_name", "nothing was stored: %s" % exc)
    return jsonify(files=[_file_dict(f) for f in stored]), 201


@bp.get("/pushes")
def pushes():
    """Newest first. Filters: device, state (done, failed, unconfirmed, active), ids=1,2;
    since=CURSOR gives only pushes that changed; poll again with `cursor`."""
    now = time.time()
    q = _query(PushesQuery)
    found = find_pushes(get_db(), device=q.device, state=q.state, ids=q.id_list(),
                        since=q.since, limit=q.limit)
    return jsonify(pushes=found, cursor=now - CURSOR_OVERLAP)


@bp.get("/pushes/<int:push_id>")
def push(push_id):
    found = get_push(get_db(), push_id)
    if found is None:
        return json_error(404, "not_found", "no push %d" % push_id)
    return jsonify(found)


@bp.post("/pushes")
def create_push():
    """One push per device picked (`devices`, `tags`, `all_online`; `only_needing` drops those
    that list these files already). `file` (one) or `files` (a bundle); `as` renames one file;
    `delete` names files to delete on the device in the same update; `force` allows
    replacing the safe-boot code and deleting the runtime; `mpy` sends each .py precompiled
    as NAME.mpy."""
    usage = ('send JSON {"files": ["<sha256>", ...], "devices": ["name"]} or '
             '{"file": "<sha256>", "as": "main.py", "devices": ["name"]}, optionally with '
             '"delete": ["name on the device", ...]')
    body = parse(NewPush, json_body())
    files = body.files if body.files is not None else [body.file] if body.file else []
    delete, force = body.delete, body.force
    if not files and not delete:
        return json_error(400, "bad_request", usage)
    devices = body.devices or ([body.device] if body.device else [])
    how = Pick(tuple(devices), tuple(body.tags), body.all_online, body.only_needing,
               wants_of(extension.of().store, get_db(), files, body.as_, delete))
    if not how:
        return json_error(400, "bad_request", "pick devices: 'devices', 'tags' or "
                                              "'all_online'")
    try:
        devices = pick(get_db(), extension.of().registry, how)
    except AllUpToDate as exc:  # only_needing, and nothing needs it: nothing to do
        return jsonify(pushes=[], message=str(exc)), 200
    except BadName as exc:
        return json_error(400, "rejected", str(exc))
    except NoDevices as exc:
        return json_error(400, "no_devices", str(exc))
    try:
        ids = extension.of().pushes.create_many(get_db(), devices, files, body.as_, force, delete,
                                                body.mpy)
    except PushRejected as exc:
        return json_error(400, "rejected", str(exc))
    return jsonify(pushes=ids), 202


@bp.post("/pushes/<int:push_id>/cancel")
def cancel_push(push_id):
    try:
        cancelled = extension.of().pushes.cancel(push_id)
    except PushRejected as exc:  # the device has it: its verdict decides
        return json_error(409, "too_late", str(exc))
    if not cancelled:
        if get_push(get_db(), push_id) is None:
            return json_error(404, "not_found", "no push %d" % push_id)
        return json_error(409, "not_running", "push %d has ended" % push_id)
    return jsonify(cancelled=push_id), 202


@bp.post("/pushes/<int:push_id>/retry")
def retry_push(push_id):
    try:
        new_id = extension.of().pushes.retry(get_db(), push_id)
    except PushRejected as exc:
        return json_error(400, "rejected", str(exc))
    return jsonify(pushes=[new_id]), 202


def _bus():
    services = extension.of().services
    if services is None:
        raise NotRunning("the MQTT bus is not running in this process")
    return services.bus
