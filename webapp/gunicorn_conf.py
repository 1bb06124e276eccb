"""gunicorn settings for DCC-OTA: exactly one worker process. The checkout's top-level
gunicorn.conf.py hands on these; an installed wheel uses them as
`gunicorn -c python:webapp.gunicorn_conf webapp.wsgi:app`.

The worker owns the MQTT client, the embedded broker and the push threads; two workers would
share one broker port and knock each other's MQTT sessions off. Threads serve the requests.
"""
import os

bind = os.environ.get("OTA_HTTP_BIND", "0.0.0.0:8000")
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("OTA_HTTP_THREADS", "8"))
# preload_app would fork after the MQTT thread started, leaving the worker without it.
preload_app = False
# The heartbeat file on tmpfs spares an SD card a write every second.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
timeout = 60
graceful_timeout = 10
accesslog = os.environ.get("OTA_HTTP_ACCESS_LOG")  # e.g. "-" for stdout
# gunicorn 24+ opens a control socket in $HOME by default, one path for every instance of the
# user, through which the worker count could be changed: there must be exactly one
control_socket_disable = True


def post_worker_init(worker):
    # The services start here, in the worker, once: never at import, never in the master.
    from webapp.services import start_services
    start_services(worker.wsgi, role="server")


def worker_exit(server, worker):
    from webapp.services import stop_services
    if getattr(worker, "wsgi", None) is not None:
        stop_services(worker.wsgi)
