"""Device keys and signed triggers, on the server's side."""
import hashlib
import html
import hmac
import json
import re

import pytest

from webapp import keys


def test_a_signature_is_an_hmac_of_everything_before_it(db):
    key = keys.add(db, "lamp1")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    signed = keys.sign("10.0.0.2|4000|main.py|" + "a" * 40 + "|12|" + "b" * 32, key, 7)
    body, sig = signed.rsplit("|sig=", 1)
    assert body.endswith("|ctr=7")
    assert sig == hmac.new(bytes.fromhex(key), body.encode(), hashlib.sha256).hexdigest()
    sha1 = keys.sign("x|1|a.py|" + "a" * 40 + "|1|" + "b" * 32, key, 8, sha256=False)
    assert len(sha1.rsplit("|sig=", 1)[1]) == 40


def test_counters_only_go_up_and_keys_are_made_once(db):
    keys.add(db, "lamp1")
    assert [keys.next_counter(db, "lamp1") for _ in range(3)] == [1, 2, 3]
    with pytest.raises(keys.KeyExists):
        keys.add(db, "lamp1")
    old = keys.get(db, "lamp1")
    assert keys.add(db, "lamp1", rotate=True) != old
    assert keys.next_counter(db, "lamp1") == 4  # a new key keeps the counter rising


def test_no_counter_is_given_twice_to_processes_signing_at_once(app, db):
    """Every process that signs (the server, CLI runs) takes counters from the same row: two
    connections taking 200 each at the same time get 400 different ones."""
    import threading

    from webapp.db import connect
    keys.add(db, "lamp1")
    taken = []

    def take():
        conn = connect(app.config["OTA_DATABASE"])
        taken.extend(keys.next_counter(conn, "lamp1") for _ in range(200))
        conn.close()
    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(1, 401))


def test_adding_a_device_in_the_browser_shows_its_settings(app, client):
    page = client.post("/devices/add", data={"name": "porch"}).data.decode()
    settings = json.loads(re.search(r'<pre id="settings"><code>(.*?)</code>', page, re.S)
                          .group(1).replace("&#34;", '"'))
    assert settings["id"] == "porch" and re.fullmatch(r"[0-9a-f]{64}", settings["key"])
    download = client.get("/devices/porch/settings.json")
    assert json.loads(download.data) == settings
    assert download.headers["Content-Disposition"] == "attachment; filename=settings.json"
    again = client.post("/devices/add", data={"name": "porch"})
    assert again.status_code == 400 and b"has a key already" in again.data
    bad = client.post("/devices/add", data={"name": "<b>x</b>"})
    assert bad.status_code == 400 and b"&lt;b&gt;" in bad.data


def test_the_api_adds_devices_and_the_page_marks_keyless_ones_insecure(app, client):
    r = client.post("/api/devices", json={"name": "relay1"})
    assert r.status_code == 201 and r.json["settings"]["id"] == "relay1"
    assert client.get("/api/devices/relay1/settings").json == r.json["settings"]
    assert client.get("/api/devices/nope/settings").status_code == 404
    from webapp.db import get_db
    from webapp.devices import parse_heartbeat
    with app.app_context():
        reg = app.extensions["dcc_ota"].registry
        reg.record(get_db(), "signed", parse_heartbeat(b'{"online": true, "features": ["ext", "sig"]}'))
        reg.record(get_db(), "open", parse_heartbeat(b'{"online": true, "features": ["ext"]}'))
    page = client.get("/").data.decode()

    def insecure_tag(name):
        card = page.split('data-device="%s"' % name)[1].split("</article>")[0]
        return re.search(r'<p class="insecure"[^>]*>', card).group(0)
    assert " hidden" in insecure_tag("signed")
    assert " hidden" not in insecure_tag("open")


def test_the_wifi_goes_into_the_settings_and_never_into_the_database(app, client):
    """Issue 12: "Add device" asks for the Wi-Fi; it is in the settings shown and downloaded,
    and nowhere the server keeps anything."""
    page = client.post("/devices/add", data={"name": "porch", "wifi_ssid": "landing-net",
                                             "wifi_password": "pa55-wörd"}).data.decode()
    shown = json.loads(html.unescape(re.search(r'<pre id="settings"><code>(.*?)</code>', page,
                                               re.S).group(1)))
    assert (shown["wifi_ssid"], shown["wifi_password"]) == ("landing-net", "pa55-wörd")

    download = client.post("/devices/porch/settings.json",
                           data={"wifi_ssid": "landing-net", "wifi_password": "pa55-wörd"})
    assert download.headers["Content-Disposition"] == "attachment; filename=settings.json"
    assert json.loads(download.data)["wifi_password"] == "pa55-wörd"
    assert json.loads(client.get("/devices/porch/settings.json").data)["wifi_ssid"] == ""

    with app.app_context():
        from webapp.db import get_db
        dump = "\n".join(get_db().iterdump())
    with open(app.config["OTA_DATABASE"], "rb") as f:
        raw = f.read()
    assert "landing-net" not in dump and b"landing-net" not in raw
    assert "pa55" not in dump and b"pa55" not in raw


def test_a_wifi_a_board_cannot_take_is_refused_and_no_key_is_made(app, client):
    r = client.post("/devices/add", data={"name": "porch", "wifi_ssid": "x" * 33})
    assert r.status_code == 400 and b"at most 32 bytes" in r.data
    assert client.get("/devices/porch/settings.json").status_code == 404


def test_a_device_added_but_never_heard_from_is_listed_as_waiting(app, client):
    client.post("/devices/add", data={"name": "porch"})
    page = client.get("/").data.decode()
    assert "Added, waiting for a first heartbeat" in page
    assert "ota flash porch --port PORT" in page
    with app.app_context():
        from webapp.db import get_db
        from webapp.devices import Heartbeat
        app.extensions["dcc_ota"].registry.record(get_db(), "porch", Heartbeat(online=True))
    assert "Added, waiting for a first heartbeat" not in client.get("/").data.decode()
