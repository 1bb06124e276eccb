"""One error format: JSON `{"error", "message"}` for the API, a small page for browsers."""
from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


def wants_json():
    if request.path.startswith("/api/"):
        return True
    # a tie (Accept: */*, as curl sends) goes to the page, as a browser would want
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def json_error(status, error, message):
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def _handle_http(exc):
    message = exc.description
    error = (exc.name or "error").lower().replace(" ", "_")
    if isinstance(exc, RequestEntityTooLarge):
        from flask import current_app
        message = "the upload is larger than the limit of %d bytes (OTA_MAX_UPLOAD)" % (
            current_app.config["OTA_MAX_UPLOAD"])
        error = "too_large"  # as a file over the limit inside a request is named
    return _answer(exc.code, error, exc.name, message)


def _answer(status, error, name, message):
    # the one error format: JSON for the API and scripts, the error page for browsers
    if wants_json():
        return json_error(status, error, message)
    return render_template("error.html", code=status, name=name, message=message), status


def _handle_broker_unusable(exc):
    # a device's settings.json would name a broker address the device cannot use
    return _answer(409, "broker_unusable", "Conflict", str(exc))


def _handle_no_space(exc):
    # a full disk (the file store's or the database's): 507, and nothing half-written kept
    return _answer(507, "no_space", "Insufficient Storage",
                   "%s: nothing was stored; free some space and try again" % exc)


def _handle_not_running(exc):
    # a process without the services (the CLI's app, a test's): nothing was queued
    return _answer(503, "not_running", "Service Unavailable", str(exc))


def _handle_database_error(exc):
    # "database or disk is full", or an I/O error on a disk with no room left (SQLite cannot
    # even open its write-ahead log then), is the disk's: a 507. Any other is ours: a 500.
    from flask import current_app

    from .health import database_disk_full
    if "full" not in str(exc) and not database_disk_full(current_app.config):
        raise exc
    from .filestore import NoSpace
    return _handle_no_space(NoSpace("the database's disk is full"))


def init_app(app):
    import sqlite3

    from .filestore import NoSpace
    from .keys import BrokerUnusable
    from .push.service import NotRunning
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(BrokerUnusable, _handle_broker_unusable)
    app.register_error_handler(NoSpace, _handle_no_space)
    app.register_error_handler(NotRunning, _handle_not_running)
    app.register_error_handler(sqlite3.OperationalError, _handle_database_error)
