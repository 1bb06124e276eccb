"""Asking a running app (services started) about its devices and pushes, with deadlines."""
from tests.support.waiting import wait_until
from webapp.db import get_db
from webapp.push.states import FINAL
from webapp.push.store import get_push


def registered(app, name, pred=lambda d: d.online, timeout=20):
    """Wait until the server's registry shows device `name` matching pred; return it."""
    def check():
        with app.app_context():
            d = app.extensions["dcc_ota"].registry.get(get_db(), name)
        return d if d is not None and pred(d) else None
    return wait_until(check, timeout, what="device %s in the registry" % name)


def push_row(app, push_id):
    with app.app_context():
        return get_push(get_db(), push_id)


def finished(app, push_id, timeout=60):
    """The push once it has ended (done, failed or unconfirmed)."""
    def check():
        row = push_row(app, push_id)
        return row if row["state"] in FINAL else None
    return wait_until(check, timeout, what="push %d to end" % push_id)


def take_offline(app, dev):
    """Stop a simulated device and wait until the server shows it offline (its last will)."""
    dev.stop()
    return registered(app, dev.name, lambda d: not d.online)
