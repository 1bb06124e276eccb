"""The WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`.
The app and its start-up checks live in webapp/wsgi.py, so that an installed wheel has them
too (`webapp.wsgi:app`)."""
from webapp.wsgi import app  # noqa: F401
