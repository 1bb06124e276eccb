"""gunicorn settings for `make run`: webapp/gunicorn_conf.py, where an installed wheel has
them too."""
from webapp.gunicorn_conf import *  # noqa: F401,F403
