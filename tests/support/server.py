"""The server as `make run` starts it: a real gunicorn process, for integration and e2e tests."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.mosquitto import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


class Gunicorn:
    """gunicorn -c gunicorn.conf.py wsgi:app, on a free port, with its state under `state_dir`."""

    def __init__(self, state_dir, root=ROOT, **env):
        self.state_dir = Path(state_dir)
        self.root = Path(root)  # another checkout's server (a benchmark's "before")
        self.env = env
        self.proc = None
        self.url = None

    def start(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        http = free_port()
        env = dict(os.environ, OTA_HTTP_BIND="127.0.0.1:%d" % http,
                   OTA_DATABASE=str(self.state_dir / "db.sqlite"),
                   OTA_FILE_STORE=str(self.state_dir / "files"),
                   OTA_ADVERTISE_HOST="127.0.0.1", OTA_TRANSFER_BIND="127.0.0.1")
        if self.root != ROOT:  # its webapp/ before the installed one
            env["PYTHONPATH"] = str(self.root)
        env.update({k: str(v) for k, v in self.env.items()})
        self.log = open(self.state_dir / "gunicorn.log", "wb")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                                      "gunicorn.conf.py", "wsgi:app"], cwd=self.root, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", http, 30)
        self.url = "http://127.0.0.1:%d" % http
        return self

    def api_token(self, username="admin", password="correct horse battery"):
        """An admin (made if missing) and a fresh API token for it, straight in the database."""
        from webapp import db, users
        path = str(self.state_dir / "db.sqlite")
        db.init_db(path)  # the worker may still be loading the app
        conn = db.connect(path)
        try:
            user = users.authenticate(conn, username, password) or users.create_user(
                conn, username, password)
            return users.create_token(conn, user, "tests")
        finally:
            conn.close()

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()

    def worker_pid(self):
        """The one gunicorn worker's process id (it serves the pages and owns the MQTT bus)."""
        children = Path("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid))
        found = children.read_text().split()
        return int(found[0]) if found else None

    def log_text(self):
        return (self.state_dir / "gunicorn.log").read_text(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
