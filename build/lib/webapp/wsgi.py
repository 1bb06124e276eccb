"""The WSGI app, made once at import: `gunicorn webapp.wsgi:app`, `flask --app webapp.wsgi ...`
(an installed wheel); the checkout's top-level wsgi.py hands on this same `app`."""
import sys

from . import create_app
from .cli import EXIT_SETUP
from .config import ConfigError


def _setup_exit_code():
    # Under gunicorn only its "app failed to load" code stops the master: any other has it
    # start a new worker, which fails the same way, forever. The CLI's code is 2.
    gunicorn = sys.modules.get("gunicorn.arbiter")
    return gunicorn.Arbiter.APP_LOAD_ERROR if gunicorn else EXIT_SETUP


try:
    app = create_app()
except ConfigError as exc:
    # A bad setting is the user's to fix: its one line, no traceback.
    print("cannot start: %s" % exc, file=sys.stderr)
    sys.exit(_setup_exit_code())
