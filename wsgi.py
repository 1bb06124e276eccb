"""The WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`."""
from webapp import create_app

app = create_app()
