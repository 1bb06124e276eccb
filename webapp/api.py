"""The JSON API under /api/: files, devices, pushes. Routes parse, call a service, answer."""
import time

from flask import Blueprint, current_app, jsonify, request

from .db import get_db
from .errors import json_error
from .filestore import FileTooLarge
from .pushes import PushRejected, get_push

bp = Blueprint("api", __name__, url_prefix="/api")


def _ext():
    return current_app.extensions["dcc_ota"]


def _file_dict(f):
    return {"sha256": f.sha256, "sha1": f.sha1, "size": f.size, "name": f.name,
            "uploaded_at": f.uploaded_at}


@bp.get("/health")
def health():
    services = _ext().get("services")
    connected = bool(services and services.bus.connected.is_set())
    return jsonify(ok=True, mqtt_connected=connected,
                   broker=services.bus.where() if services else None)


@bp.get("/devices")
def devices():
    return jsonify(devices=[d.to_dict() for d in _ext()["registry"].all(get_db())], now=time.time())


@bp.get("/devices/<name>")
def device(name):
    d = _ext()["registry"].get(get_db(), name)
    if d is None:
        return json_error(404, "not_found", "no device named %r has sent a heartbeat" % name)
    return jsonify(d.to_dict())


@bp.get("/files")
def files():
    return jsonify(files=[_file_dict(f) for f in _ext()["store"].all(get_db())])


@bp.post("/files")
def upload():
    uploads = request.files.getlist("file")
    if not uploads:
        return json_error(400, "no_file", "send the file in a multipart field named 'file'")
    stored = []
    for upload in uploads:
        try:
            stored.append(_ext()["store"].save(get_db(), upload.stream, upload.filename or "unnamed"))
        except FileTooLarge as exc:
            return json_error(413, "too_large", str(exc))
    return jsonify(files=[_file_dict(f) for f in stored]), 201


@bp.get("/pushes")
def pushes():
    limit = min(request.args.get("limit", 50, type=int), 500)
    query, args = "SELECT id FROM pushes", []
    if request.args.get("device"):
        query, args = query + " WHERE device = ?", [request.args["device"]]
    rows = get_db().execute(query + " ORDER BY id DESC LIMIT ?", args + [limit]).fetchall()
    return jsonify(pushes=[get_push(get_db(), r["id"]) for r in rows])


@bp.get("/pushes/<int:push_id>")
def push(push_id):
    found = get_push(get_db(), push_id)
    if found is None:
        return json_error(404, "not_found", "no push %d" % push_id)
    return jsonify(found)


@bp.post("/pushes")
def create_push():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("file"), str):
        return json_error(400, "bad_request",
                          'send JSON {"file": "<sha256>", "devices": ["name"], "as": "main.py"}')
    devices = body.get("devices") or ([body["device"]] if body.get("device") else [])
    if not devices or not all(isinstance(d, str) for d in devices):
        return json_error(400, "bad_request", "name at least one device in 'devices'")
    services = _ext().get("services")
    if services is None:
        return json_error(503, "not_running", "the push service is not running in this process")
    try:
        ids = [services.pushes.create(get_db(), d, body["file"], body.get("as")) for d in devices]
    except PushRejected as exc:
        return json_error(400, "rejected", str(exc))
    return jsonify(pushes=ids), 202
