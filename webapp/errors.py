"""One error format: JSON `{"error", "message"}` for the API, a small page for browsers."""
from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


def wants_json():
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def json_error(status, error, message):
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def _handle_http(exc):
    message = exc.description
    if isinstance(exc, RequestEntityTooLarge):
        from flask import current_app
        message = "the upload is larger than the limit of %d bytes (OTA_MAX_UPLOAD)" % (
            current_app.config["OTA_MAX_UPLOAD"])
    error = (exc.name or "error").lower().replace(" ", "_")
    if wants_json():
        return json_error(exc.code, error, message)
    return render_template("error.html", code=exc.code, name=exc.name, message=message), exc.code


def _handle_broker_unusable(exc):
    # a device's settings.json would name a broker address the device cannot use
    if wants_json():
        return json_error(409, "broker_unusable", str(exc))
    return render_template("error.html", code=409, name="Conflict", message=str(exc)), 409


def init_app(app):
    from .keys import BrokerUnusable
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(BrokerUnusable, _handle_broker_unusable)
