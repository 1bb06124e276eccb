"""The releases and rollouts pages: they render what is stored, their forms work without
JavaScript (a folder's upload, a rollout's start, pause / go / cancel) and say why when they
refuse, and the rollout page hands the scripts the phases and steps from the server."""
import html
import io
import json
import re

from tests.unit.test_rollouts import fleet  # noqa: F401 (a fixture: 20 devices, release v2)
from webapp.rollout.states import for_scripts


def flashes(r):
    return [html.unescape(m) for m in re.findall(r'<p class="flash \w+">(.*?)</p>',
                                                  r.data.decode())]


def start(client, **form):
    data = dict({"release": "v2", "device": ["d01", "d02", "d03"], "canary": "1"}, **form)
    return client.post("/rollouts", data=data)


def started(client):
    """A rollout of v2 to d01-d03 from the form; its page seen (its flash taken): its id."""
    r = start(client)
    client.get(r.location)
    return int(r.location.rsplit("/", 1)[1])


def test_the_pages_render_and_the_nav_links_them(app, fleet, client):  # noqa: F811
    for path in ("/releases", "/rollouts", "/rollouts/new", "/rollouts/new?release=v2"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert 'href="/releases"' in r.data.decode() and 'href="/rollouts"' in r.data.decode()
    assert '<option value="v2" selected>' in client.get("/rollouts/new?release=v2").data.decode()
    assert client.get("/rollouts/999").status_code == 404


def test_the_releases_page_lists_files_sizes_and_how_many_devices_run_each(app, fleet, client):  # noqa: F811
    page = client.get("/releases").data.decode()
    card = page.split('data-release="v2"')[1].split("</article>")[0]
    assert "<code>lib/util.py</code>" in card and "<code>main.py</code>" in card
    assert "12 B" in card and "1 device runs it" in card  # d19 runs v2
    assert 'href="/rollouts/new?release=v2"' in card
    assert 'data-api-url="/api/releases"' in page and "webkitdirectory" in page


def test_a_folder_posted_without_javascript_becomes_a_release(app, fleet, client):  # noqa: F811
    r = client.post("/releases", data={"name": "v3", "delete_extra": "yes", "file": [
        (io.BytesIO(b"print('v3')\n"), "lamp-v3/main.py"),
        (io.BytesIO(b"Y = 2\n"), "lamp-v3/lib/extra.py")]}, follow_redirects=True)
    assert flashes(r) == ["Made release v3: 2 files."]
    assert client.get("/api/releases/v3").json["delete_extra"] is True
    assert [f["target"] for f in client.get("/api/releases/v3").json["files"]] == \
        ["lib/extra.py", "main.py"]
    r = client.post("/releases", data={"name": "v3", "file": [
        (io.BytesIO(b"Z = 3\n"), "z.py")]}, follow_redirects=True)
    assert flashes(r) == ["No release was made: there is a release named v3 already: releases "
                          "never change, give the new one a new name"]
    r = client.post("/releases", data={"name": "v4"}, follow_redirects=True)
    assert flashes(r) == ["No release was made: send the folder's files in multipart fields "
                          "named 'file'"]


def test_deleting_a_release_and_the_refusal_once_a_rollout_took_it(app, fleet, client):  # noqa: F811
    r = client.post("/releases", data={"name": "v9", "file": [(io.BytesIO(b"A = 9\n"), "a.py")]},
                    follow_redirects=True)
    assert flashes(r) == ["Made release v9: 1 file."]
    r = client.post("/releases/v9/delete", follow_redirects=True)
    assert flashes(r) == ["Deleted release v9. Its files stay stored."]
    assert 'data-release="v9"' not in r.data.decode()
    rid = started(client)
    r = client.post("/releases/v2/delete", follow_redirects=True)
    assert flashes(r) == ["Not deleted: rollout %d takes v2; cancel it first." % rid]
    assert client.get("/api/releases/v2").status_code == 200


def test_the_rollout_form_starts_one_and_goes_to_its_page(app, fleet, client):  # noqa: F811
    r = start(client, wave_size="2", concurrency="1", threshold="12.5", offline_wait_min="2")
    assert r.status_code == 302
    rid = int(r.location.rsplit("/", 1)[1])
    shown = client.get("/api/rollouts/%d" % rid).json
    assert shown["settings"] == {"canary": 1, "wave_size": 2, "concurrency": 1,
                                 "threshold": 0.125, "auto_continue": False,
                                 "offline_wait": 120.0}
    assert [(d["device"], d["wave"]) for d in shown["devices"]] == \
        [("d01", 0), ("d02", 1), ("d03", 1)]
    page = client.get(r.location).data.decode()
    assert "Rollout %d started." % rid in page
    states = re.search(r'data-states="([^"]+)"', page).group(1)
    assert json.loads(html.unescape(states)) == for_scripts()
    assert "<h2>Canary</h2>" in page and "<h2>Wave 1</h2>" in page
    assert 'action="/rollouts/%d/pause"' % rid in page
    assert 'data-api-url="/api/rollouts/%d/pause"' % rid in page
    assert client.get("/rollouts").data.decode().count('data-rollout="%d"' % rid) == 1


def test_the_rollout_form_picks_by_tag_or_every_online_device(app, fleet, client):  # noqa: F811
    client.put("/api/devices/d05/tags", json={"tags": ["kitchen"]})
    assert "kitchen" in client.get("/rollouts/new").data.decode()
    r = client.post("/rollouts", data={"release": "v2", "tag": "kitchen"})
    first = r.location.rsplit("/", 1)[1]
    assert [d["device"] for d in client.get("/api/rollouts/%s" % first)
            .json["devices"]] == ["d05"]
    r = client.post("/rollouts", data={"release": "v2", "all_online": "yes"})
    assert "/rollouts/new" in r.location  # d05 is in rollout 1, which has not ended
    assert "d05 (rollout %s)" % first in flashes(client.get(r.location))[-1]
    client.post("/api/rollouts/%s/cancel" % first)
    r = client.post("/rollouts", data={"release": "v2", "all_online": "yes"})
    shown = client.get("/api/rollouts/%s" % r.location.rsplit("/", 1)[1]).json
    assert shown["total"] == 20 and shown["counts"]["skipped"] == 1  # d19 runs v2


def test_the_rollout_form_says_why_it_starts_nothing(app, fleet, client):  # noqa: F811
    for form, said in [
            ({"device": []}, "Not started: no devices picked: name devices or tags, or pick every online device."),
            ({"canary": "lots"}, "Not started: canary: 'lots' is not a number."),
            ({"threshold": "nan"}, "Not started: threshold: 'nan' is not a number."),
            ({"offline_wait_min": "50000"},
             "Not started: offline wait: 0 to 43200 minutes (30 days)."),
            ({"release": "nope"}, "Not started: no release named nope."),
            ({"device": ["../x"]}, None)]:
        r = start(client, **form)
        assert r.status_code == 302 and "/rollouts/new" in r.location, form
        got = flashes(client.get(r.location))
        assert len(got) == 1 and got[0].startswith("Not started: "), (form, got)
        if said:
            assert got == [said]
    r = start(client, concurrency="0")
    assert "concurrency" in flashes(client.get(r.location))[0]
    assert client.get("/api/rollouts").json["rollouts"] == []


def test_pause_go_and_cancel_without_javascript(app, fleet, client):  # noqa: F811
    rid = started(client)
    steer = "/rollouts/%d/%%s" % rid
    assert flashes(client.post(steer % "pause", follow_redirects=True)) == ["Paused."]
    page = client.get("/rollouts/%d" % rid).data.decode()
    assert '>Resume</button>' in page and "paused by a person" in page
    assert flashes(client.post(steer % "pause", follow_redirects=True)) == \
        ["Not done: rollout %d is not running." % rid]
    assert flashes(client.post(steer % "resume", follow_redirects=True)) == ["Going on."]
    assert flashes(client.post(steer % "cancel", follow_redirects=True)) == ["Cancelled."]
    assert client.get("/api/rollouts/%d" % rid).json["state"] == "cancelled"
    assert client.post("/rollouts/999/pause").status_code == 404
    assert client.post(steer % "explode").status_code == 404


def test_the_new_forms_need_the_csrf_token(app, fleet, client):  # noqa: F811
    rid = started(client)
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    for url in ("/releases", "/releases/v2/delete", "/rollouts", "/rollouts/%d/pause" % rid,
                "/rollouts/%d/cancel" % rid):
        r = client.post(url, data={"release": "v2", "device": "d01"})
        assert r.status_code == 400 and b"CSRF" in r.data, url
    assert client.get("/api/rollouts/%d" % rid).json["state"] == "running"
    assert len(client.get("/api/rollouts").json["rollouts"]) == 1
