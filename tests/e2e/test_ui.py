"""What a person does in the browser: upload, push, watch, toggle the lamp."""
import hashlib
import json
import secrets

import paho.mqtt.client as mqtt
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import staleness_of

from dcc_sim.launcher import SimDevice
from tests.e2e.conftest import MAX_UPLOAD, OFFLINE_WAIT, wait
from webapp import db

pytestmark = pytest.mark.e2e


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def make_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def stored_sha1s(browser):
    # In one script: the list is swapped for a fresh one after each upload.
    return set(browser.execute_script(
        "return [...document.querySelectorAll('#stored tr[data-sha1]')].map(r => r.dataset.sha1)"))


def drop_files(browser, zone_selector, paths):
    """A real `drop` event carrying a DataTransfer with these files, as a drag from the desktop.

    The files are picked through a throwaway hidden input (the only way a page gets File
    objects), then dispatched on the zone; ActionChains cannot drag files from outside.
    """
    picker = browser.execute_script(
        "const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
        "i.id = 'e2e-picker'; i.style.display = 'none'; document.body.append(i); return i;")
    picker.send_keys("\n".join(str(p) for p in paths))
    browser.execute_script(
        "const files = document.getElementById('e2e-picker').files;"
        "const dt = new DataTransfer(); for (const f of files) dt.items.add(f);"
        "const zone = document.querySelector(arguments[0]);"
        "for (const type of ['dragenter', 'dragover', 'drop'])"
        "  zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true,"
        "                                          cancelable: true}));"
        "document.getElementById('e2e-picker').remove();", zone_selector)


def upload(browser, server, path):
    """Upload through the file picker; wait for this upload's own result, then for the stored
    list to be swapped for the server's fresh one (not just for the digest to be listed: the
    same bytes may have been stored before)."""
    browser.get(server.url + "/files")
    before = browser.find_element(By.ID, "stored")
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    digest = sha1(path.read_bytes())
    wait(browser, lambda b: [s.text for s in b.find_elements(By.CSS_SELECTOR, "#uploads .status")]
         == ["stored, SHA-1 " + digest], what="%s to be stored" % path.name)
    wait(browser, staleness_of(before), what="the stored list to refresh after %s" % path.name)
    assert digest in stored_sha1s(browser)
    return digest


def stored_rows(server, digest):
    """The file rows the server holds for these bytes, read back from its database."""
    conn = db.connect(str(server.state_dir / "db.sqlite"))
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT name, size FROM files WHERE sha1 = ? AND deleted_at IS NULL", (digest,))]
    finally:
        conn.close()


def card(browser, name):
    return browser.find_element(By.CSS_SELECTOR, '[data-device="%s"]' % name)


def card_field(browser, name, field):
    return card(browser, name).find_element(By.CSS_SELECTOR, '[data-field="%s"]' % field).text


def wait_online(browser, server, name, online=True):
    browser.get(server.url + "/")
    state = "online" if online else "offline"
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device="%s"]' % name)
         and card_field(b, name, "state") == state, what="%s %s" % (name, state))


def push_via_form(browser, server, digests, names, select_all_online=False):
    browser.get(server.url + "/push")
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="file"]'):
        if (box.get_attribute("data-sha1") in digests) != box.is_selected():
            box.click()
    if select_all_online:
        browser.find_element(By.ID, "select-online").click()
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="device"]'):
        if (box.get_attribute("value") in names) != box.is_selected():
            box.click()
    browser.find_element(By.CSS_SELECTOR, "#push-form button[type=submit]").click()
    wait(browser, lambda b: "/pushes/" in b.current_url, what="the timeline page")


def timeline_state(browser, push_card):
    return push_card.find_element(By.CSS_SELECTOR, '[data-field="state"]').text


def test_dropping_two_files_lists_both_with_their_sha1(browser, server, tmp_path):
    a = make_file(tmp_path, "alpha.py", b"ALPHA = 1\n" * 30)
    b = make_file(tmp_path, "beta.txt", secrets.token_bytes(3000))
    browser.get(server.url + "/files")

    drop_files(browser, "#dropzone", [a, b])

    wait(browser, lambda br: {sha1(a.read_bytes()), sha1(b.read_bytes())} <= stored_sha1s(br),
         what="both dropped files in the stored list")
    statuses = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#uploads .status")]
    assert sorted(statuses) == sorted("stored, SHA-1 " + sha1(p.read_bytes()) for p in (a, b))
    row = browser.find_element(By.CSS_SELECTOR, '#stored tr[data-sha1="%s"]' % sha1(a.read_bytes()))
    assert "alpha.py" in row.text and sha1(a.read_bytes()) in row.text


def test_the_file_picker_uploads_and_the_same_bytes_are_stored_once(browser, server, tmp_path):
    data = b"GAMMA = 3\n"
    digest = upload(browser, server, make_file(tmp_path, "gamma.py", data))
    assert stored_rows(server, digest) == [("gamma.py", len(data))]

    assert upload(browser, server, make_file(tmp_path, "gamma-copy.py", data)) == digest

    rows = browser.find_elements(By.CSS_SELECTOR, '#stored tr[data-sha1="%s"]' % digest)
    assert len(rows) == 1 and "gamma.py" in rows[0].text and "gamma-copy.py" not in rows[0].text
    assert stored_rows(server, digest) == [("gamma.py", len(data))]
    blobs = [f for f in (server.state_dir / "files").iterdir() if f.read_bytes() == data]
    assert len(blobs) == 1


def test_an_oversized_upload_says_why_and_stores_nothing(browser, server, tmp_path):
    big = make_file(tmp_path, "huge.bin", b"\0" * (MAX_UPLOAD + 1))
    browser.get(server.url + "/files")
    before = stored_sha1s(browser)

    browser.find_element(By.ID, "file-input").send_keys(str(big))

    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#uploads .upload.error"),
         what="the upload error")
    message = browser.find_element(By.CSS_SELECTOR, "#uploads .upload.error .status").text
    assert message == "too large: the limit is 64.0 KB"
    browser.refresh()
    assert stored_sha1s(browser) == before


def test_a_push_shows_its_timeline_to_done_and_the_device_comes_back_with_the_file(
        browser, server, sims, tmp_path):
    dev = sims[0]
    wait_online(browser, server, dev.name)
    boot_before = int(card_field(browser, dev.name, "boot"))
    data = b"# the night lamp, v2\nLED_AT_BOOT = False\n" * 20
    digest = upload(browser, server, make_file(tmp_path, "lamp_conf.py", data))

    push_via_form(browser, server, [digest], [dev.name])

    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: timeline_state(b, push_card) == "done", what="the push to be done")
    steps = [li.find_element(By.TAG_NAME, "strong").text
             for li in push_card.find_elements(By.CSS_SELECTOR, ".timeline li")]
    assert steps == ["queued", "trigger_sent", "connected", "transferring", "sent", "verified",
                     "rebooting", "online", "done"]
    bar = push_card.find_element(By.CSS_SELECTOR, "progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(len(data))

    browser.get(server.url + "/")
    wait(browser, lambda b: card_field(b, dev.name, "boot") == str(boot_before + 1),
         what="the new boot count")
    card(browser, dev.name).find_element(By.TAG_NAME, "summary").click()
    assert "lamp_conf.py %s" % digest[:10] in card_field(browser, dev.name, "files")
    assert (dev.flash_dir / "lamp_conf.py").read_bytes() == data


def test_one_push_to_two_devices_at_once(browser, server, sims, tmp_path):
    for dev in sims:
        wait_online(browser, server, dev.name)
    data = b"SHARED = True\n" * 10
    digest = upload(browser, server, make_file(tmp_path, "shared.py", data))

    push_via_form(browser, server, [digest], [d.name for d in sims], select_all_online=True)

    cards = browser.find_elements(By.CSS_SELECTOR, "[data-push]")
    assert len(cards) == 2
    wait(browser, lambda b: all(timeline_state(b, c) == "done" for c in cards),
         what="both pushes to be done")
    for dev in sims:
        assert (dev.flash_dir / "shared.py").read_bytes() == data


def test_select_all_online_picks_exactly_the_online_devices(browser, server, sims, tmp_path):
    for dev in sims:
        wait_online(browser, server, dev.name)
    upload(browser, server, make_file(tmp_path, "any.py", b"ANY = 1\n"))
    browser.get(server.url + "/push")
    browser.find_element(By.ID, "select-online").click()
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="device"]'):
        assert box.is_selected() == (box.get_attribute("data-online") == "true")
    assert all(browser.find_element(By.CSS_SELECTOR, 'input[value="%s"]' % d.name).is_selected()
               for d in sims)


def test_the_led_switch_shows_what_the_device_reports(browser, server, sims):
    dev = sims[1]
    wait_online(browser, server, dev.name)
    switch = '[data-device="%s"] button.switch[data-key="led"]' % dev.name
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, switch), what="the LED switch")
    # found afresh at each look; the next test holds one node through the heartbeats
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, switch)
         .get_attribute("aria-checked") == "false", what="the LED to show off at boot")

    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, switch).click() or True,
         what="the LED switch to take a click")

    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, switch)
         .get_attribute("aria-checked") == "true", what="the LED to report on")
    pins = json.loads((dev.flash_dir / ".sim_out.json").read_text())
    assert pins["2"] == 0  # the ESP8266's built-in LED is active-low: 0 is lit

    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, switch).click() or True,
         what="the LED switch to take a click")
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, switch)
         .get_attribute("aria-checked") == "false", what="the LED to report off")


def test_the_led_switch_stays_the_same_node_while_heartbeats_come(browser, server, sims):
    """Focus, a click in flight and a screen reader stay with the switch the user is on: the
    live list writes a new state into it instead of building a new one each poll. (And the
    file list, whose files do not change, is not rebuilt under a text selection.)"""
    dev = sims[1]
    wait_online(browser, server, dev.name)
    uptime = card_field(browser, dev.name, "uptime")
    wait(browser, lambda b: card_field(b, dev.name, "uptime") != uptime,
         what="a heartbeat drawn on the card")
    first_file = browser.find_element(
        By.CSS_SELECTOR, '[data-device="%s"] [data-field="files"] li' % dev.name)
    switch = wait(browser, lambda b: b.find_element(
        By.CSS_SELECTOR, '[data-device="%s"] button.switch[data-key="led"]' % dev.name),
        what="the LED switch")
    wait(browser, lambda b: switch.get_attribute("aria-checked") == "false",
         what="the LED to show off")
    browser.execute_script("arguments[0].focus()", switch)

    def lit():
        return json.loads((dev.flash_dir / ".sim_out.json").read_text())["2"] == 0  # active-low

    for want in ("true", "false"):  # toggled twice from the keyboard, never focused again
        browser.switch_to.active_element.send_keys(Keys.SPACE)
        wait(browser, lambda b: switch.get_attribute("aria-checked") == want,
             what="the same LED switch node to report %s" % want)
        assert lit() == (want == "true")
        for beat in range(2):  # two more heartbeats drawn on the card
            uptime = card_field(browser, dev.name, "uptime")
            wait(browser, lambda b: card_field(b, dev.name, "uptime") != uptime,
                 what="heartbeat %d on the card" % (beat + 1))
        assert browser.find_element(
            By.CSS_SELECTOR, '[data-device="%s"] button.switch[data-key="led"]' % dev.name) == switch
        assert browser.switch_to.active_element == switch
        assert switch.get_attribute("aria-checked") == want
        assert switch.get_attribute("aria-busy") is None
    assert browser.find_element(
        By.CSS_SELECTOR, '[data-device="%s"] [data-field="files"] li' % dev.name) == first_file


def test_a_push_to_an_offline_device_names_the_failure_and_offers_a_retry(
        browser, server, mosquitto, tmp_path):
    gone = SimDevice("gone-%s" % secrets.token_hex(2), tmp_path / "gone",
                     broker_port=mosquitto.port, heartbeat=2).start()
    try:
        wait_online(browser, server, gone.name)
    finally:
        gone.stop()
    wait_online(browser, server, gone.name, online=False)
    digest = upload(browser, server, make_file(tmp_path, "late.py", b"LATE = 1\n"))

    push_via_form(browser, server, [digest], [gone.name])

    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: timeline_state(b, push_card) == "waiting", what="waiting")
    assert push_card.find_element(By.CSS_SELECTOR, '[data-field="cancel"]').is_displayed()
    wait(browser, lambda b: timeline_state(b, push_card) == "failed",
         timeout=OFFLINE_WAIT + 10, what="the failure")
    reason = push_card.find_element(By.CSS_SELECTOR, '[data-field="reason"]')
    assert reason.text == "Failed: device offline: not back within %ds" % OFFLINE_WAIT
    assert not push_card.find_element(By.CSS_SELECTOR, '[data-field="cancel"]').is_displayed()
    retry = push_card.find_element(By.CSS_SELECTOR, '[data-field="retry"] button')
    first_url = browser.current_url
    retry.click()
    wait(browser, lambda b: b.current_url != first_url, what="the retried push")
    assert "Retrying push" in browser.find_element(By.CSS_SELECTOR, ".flashes").text
    again = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    again.find_element(By.CSS_SELECTOR, '[data-field="cancel"] button').click()
    wait(browser, lambda b: "Cancelled push" in b.find_element(By.CSS_SELECTOR, ".flashes").text,
         what="the cancellation")
    # The cancel is answered at once; the push's thread ends it a moment later, and the live
    # timeline shows it.
    wait(browser, lambda b: "cancelled by the user" in b.find_element(By.CSS_SELECTOR,
                                                                      "[data-push]").text,
         what="the cancelled push's reason")

    browser.get(server.url + "/history?device=%s&outcome=failed" % gone.name)
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 2 and all(gone.name in r.text and "failed" in r.text for r in rows)


def test_strings_from_the_broker_are_shown_as_text(browser, server, mosquitto):
    name = "evil-%s" % secrets.token_hex(2)
    hostile = "<img src=x onerror=\"document.title='owned'\">"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-" + name)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    doc = {"online": True, "fw": hostile[:32], "interval": 60,
           "files": {"<b>bold</b>.py": "a" * 40}, "plugins": {"lamp": {"mode": hostile}}}
    client.publish("%s/status" % name, json.dumps(doc), retain=True).wait_for_publish(5)
    try:
        wait_online(browser, server, name)
        c = card(browser, name)
        assert c.find_elements(By.TAG_NAME, "img") == [] and c.find_elements(By.TAG_NAME, "b") == []
        assert hostile in c.text
        c.find_element(By.TAG_NAME, "summary").click()
        assert "<b>bold</b>.py" in card_field(browser, name, "files")
        assert browser.title != "owned"
    finally:
        client.publish("%s/status" % name, b"", retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()


def test_dropping_a_file_on_a_device_pushes_it_there(browser, server, sims, tmp_path):
    dev = sims[0]
    wait_online(browser, server, dev.name)
    data = b"# dropped straight on the card\n"
    path = make_file(tmp_path, "dropped.py", data)

    drop_files(browser, '[data-device="%s"]' % dev.name, [path])

    wait(browser, lambda b: "/pushes/" in b.current_url, what="the push's timeline")
    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: timeline_state(b, push_card) == "done", what="the push to be done")
    assert dev.name in push_card.text and "dropped.py" in push_card.text
    assert (dev.flash_dir / "dropped.py").read_bytes() == data


def test_deleting_a_file_asks_first(browser, server, tmp_path):
    digest = upload(browser, server, make_file(tmp_path, "doomed.py", b"DOOMED = 1\n"))
    delete = '#stored tr[data-sha1="%s"] button.danger' % digest

    browser.find_element(By.CSS_SELECTOR, delete).click()
    alert = browser.switch_to.alert
    assert alert.text == "Delete doomed.py? Devices keep their copies."
    alert.dismiss()
    assert digest in stored_sha1s(browser)

    browser.find_element(By.CSS_SELECTOR, delete).click()
    browser.switch_to.alert.accept()
    wait(browser, lambda b: "Deleted doomed.py." in b.find_element(By.CSS_SELECTOR, ".flashes").text,
         what="the deletion message")
    assert digest not in stored_sha1s(browser)


def test_two_files_go_as_one_update(browser, server, sims, tmp_path):
    dev = sims[1]
    wait_online(browser, server, dev.name)
    one, two = b"PART = 1\n", b"def helper():\n    return 2\n"
    digests = [upload(browser, server, make_file(tmp_path, "part.py", one)),
               upload(browser, server, make_file(tmp_path, "helper.py", two))]

    push_via_form(browser, server, digests, [dev.name])

    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    assert "part.py" in push_card.text and "helper.py" in push_card.text
    wait(browser, lambda b: timeline_state(b, push_card) == "done", what="the bundle to be done")
    assert "bundle form" in push_card.text
    assert (dev.flash_dir / "part.py").read_bytes() == one
    assert (dev.flash_dir / "helper.py").read_bytes() == two


def test_a_main_py_that_raises_rolls_back_and_the_timeline_says_why(browser, server, sims,
                                                                   tmp_path):
    dev = sims[0]
    wait_online(browser, server, dev.name)
    before = (dev.flash_dir / "main.py").read_bytes()
    bad = b"raise RuntimeError('the lamp relay is wired to the wrong pin')\n"
    digest = upload(browser, server, make_file(tmp_path, "main.py", bad))

    push_via_form(browser, server, [digest], [dev.name])

    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: timeline_state(b, push_card) == "failed", timeout=60,
         what="the rollback")
    reason = push_card.find_element(By.CSS_SELECTOR, '[data-field="reason"]').text
    assert reason.startswith("Failed: rolled back")
    assert "the lamp relay is wired to the wrong pin" in reason
    assert (dev.flash_dir / "main.py").read_bytes() == before
    wait_online(browser, server, dev.name)


def test_a_file_on_a_device_card_is_deleted_over_the_air(browser, server, sims, tmp_path):
    dev = sims[1]
    wait_online(browser, server, dev.name)
    drop_files(browser, '[data-device="%s"]' % dev.name,
               [make_file(tmp_path, "scratch.txt", b"a note to delete\n")])
    wait(browser, lambda b: "/pushes/" in b.current_url, what="the push's timeline")
    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: timeline_state(b, push_card) == "done", what="the push to be done")

    wait_online(browser, server, dev.name)
    card(browser, dev.name).find_element(By.CSS_SELECTOR, "summary").click()
    delete = 'button[aria-label="Delete %s on %s"]'
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, delete % ("scratch.txt", dev.name)),
         what="scratch.txt listed on the card")
    # the runtime asks for "I know" first; a plain file does not
    main_form = browser.find_element(By.CSS_SELECTOR, delete % ("main.py", dev.name)) \
        .find_element(By.XPATH, "..")
    assert main_form.find_elements(By.CSS_SELECTOR, 'input[name="force"][required]')
    button = browser.find_element(By.CSS_SELECTOR, delete % ("scratch.txt", dev.name))
    assert not button.find_element(By.XPATH, "..").find_elements(By.CSS_SELECTOR,
                                                                 'input[name="force"]')
    button.click()
    alert = browser.switch_to.alert
    assert alert.text == "Delete scratch.txt on %s? A rollback would put it back." % dev.name
    alert.accept()

    wait(browser, lambda b: "/pushes/" in b.current_url, what="the delete's timeline")
    push_card = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    assert "delete scratch.txt" in push_card.text
    wait(browser, lambda b: timeline_state(b, push_card) == "done", timeout=60,
         what="the delete to be done")
    assert not (dev.flash_dir / "scratch.txt").exists()
    wait_online(browser, server, dev.name)
    card(browser, dev.name).find_element(By.CSS_SELECTOR, "summary").click()
    wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR,
                                                delete % ("scratch.txt", dev.name)),
         what="scratch.txt gone from the card")
