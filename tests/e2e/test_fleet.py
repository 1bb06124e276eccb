"""Issue 13: a person works the devices page of a server with 500 live devices: searches,
filters by tag and by state, tags a device, opens one and pushes a file to it.

500 heartbeat-only devices (tests/support/heartbeats.py) and one simulated board that takes
the push, on a broker of this module's own (the fleet's retained heartbeats stay out of the
other modules' servers).
"""
import json
import secrets
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dcc_sim.launcher import SimDevice
from tests.e2e.conftest import ADMIN, PASSWORD, wait
from tests.e2e.test_ui import make_file, upload
from tests.support.heartbeats import HeartbeatFleet
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_until
from webapp import db
from webapp.devices import Registry

pytestmark = pytest.mark.e2e

FLEET = 500
GARDEN = ["node-%03d" % i for i in range(0, FLEET, 7)]  # 72 devices tagged "garden"
GONE = ["node-%03d" % i for i in (11, 222, 333)]  # they lose power during the test


@pytest.fixture(scope="module")
def mosquitto():
    with Mosquitto() as broker:
        yield broker


@pytest.fixture(scope="module")
def fleet(mosquitto, server, logged_in, tmp_path_factory):
    """The 500 senders and the board ("lamp-<hex>"), all listed by the server; an API token
    for the test's own setup."""
    senders = HeartbeatFleet(mosquitto.port, FLEET, prefix="node").start()
    board = SimDevice("lamp-%s" % secrets.token_hex(2), tmp_path_factory.mktemp("flash"),
                      broker_port=mosquitto.port, heartbeat=2,
                      settings={"confirm_after": 1}).start()
    token = server.api_token(ADMIN, PASSWORD)  # the page's admin, made by logged_in
    try:
        senders.wait_connected(60)
        wait_until(lambda: len(api(server, token, "/api/devices")["devices"]) > FLEET,
                   timeout=60, interval=0.5, what="the server to list the fleet and the board")
        # tagged as `ota tag` does, from another process (tags are not for API tokens)
        conn = db.connect(str(server.state_dir / "db.sqlite"))
        try:
            for name in GARDEN:
                Registry().set_tags(conn, name, ["garden"])
        finally:
            conn.close()
        yield senders, board, token
    finally:
        board.stop()
        senders.stop()


def api(server, token, path):
    req = urllib.request.Request(server.url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def names_shown(browser):
    return [c.get_attribute("data-device")
            for c in browser.find_elements(By.CSS_SELECTOR, "#devices [data-device]")]


def count_text(browser):
    return browser.find_element(By.ID, "devices-count").text


def test_a_person_finds_tags_opens_and_pushes_among_500_devices(browser, server, fleet,
                                                                 tmp_path):
    senders, board, token = fleet
    data = b"PORCH = 'lit at dusk'\n"  # the file it will push: stored first, as a person does
    digest = upload(browser, server, make_file(tmp_path, "porch.py", data))
    browser.get(server.url + "/")
    wait(browser, lambda b: "501 in all" in count_text(b), what="all 501 devices counted")
    assert count_text(browser).startswith("Showing 1–24 of 501")
    assert names_shown(browser)[:3] == [board.name, "node-000", "node-001"]

    # search by a part of the name: the board alone, then a part of the fleet
    search = browser.find_element(By.ID, "device-q")
    search.send_keys(board.name[-4:])
    wait(browser, lambda b: names_shown(b) == [board.name], what="the board found by name")
    search.clear()
    search.send_keys("node-49")
    wait(browser, lambda b: names_shown(b) == ["node-%03d" % i for i in range(490, 500)],
         what="node-490 to node-499")
    assert count_text(browser).startswith("Showing 1–10 of 10;")
    assert "q=node-49" in browser.current_url  # a reload shows the same

    search.send_keys("x")
    wait(browser, lambda b: names_shown(b) == [], what="no card for a name nobody has")
    assert count_text(browser).startswith("No device matches; 501 in all")

    # filter by tag, then page through it
    search.clear()
    Select(browser.find_element(By.ID, "device-tag")).select_by_value("garden")
    wait(browser, lambda b: names_shown(b) == GARDEN[:24], what="the garden's first page")
    assert count_text(browser).startswith("Showing 1–24 of 72;")
    assert all(c.find_element(By.CSS_SELECTOR, '[data-field="tags"]').text == "garden"
               for c in browser.find_elements(By.CSS_SELECTOR, "#devices [data-device]"))
    browser.find_element(By.CSS_SELECTOR, '#devices-pager a[rel="next"]').click()
    wait(browser, lambda b: names_shown(b) == GARDEN[24:48], what="the garden's second page")
    assert "Page 2 of 3" in browser.find_element(By.ID, "devices-pager").text

    # filter by state: three devices lose power, their last wills mark them offline
    Select(browser.find_element(By.ID, "device-tag")).select_by_value("")
    senders.silence(GONE)
    Select(browser.find_element(By.ID, "device-state")).select_by_value("offline")
    wait(browser, lambda b: names_shown(b) == GONE, what="exactly the three offline devices")
    for name in GONE:
        card = browser.find_element(By.CSS_SELECTOR, '[data-device="%s"]' % name)
        assert card.find_element(By.CSS_SELECTOR, '[data-field="state"]').text == "offline"
        assert card.find_element(By.CSS_SELECTOR, '[data-field="forget"]').is_displayed()
    Select(browser.find_element(By.ID, "device-state")).select_by_value("online")
    wait(browser, lambda b: count_text(b).startswith("Showing 1–24 of 498;"),
         what="the 498 online devices")

    # tag the board from its card; the tag filter offers the new tag
    Select(browser.find_element(By.ID, "device-state")).select_by_value("")
    search.send_keys(board.name)
    wait(browser, lambda b: names_shown(b) == [board.name], what="the board's card alone")
    card = browser.find_element(By.CSS_SELECTOR, '[data-device="%s"]' % board.name)
    card.find_element(By.CSS_SELECTOR, "details.edit-tags summary").click()
    field = card.find_element(By.CSS_SELECTOR, 'input[name="tags"]')
    field.clear()
    field.send_keys("porch lamp")
    card.find_element(By.CSS_SELECTOR, ".tags-form button[type=submit]").click()
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-device="%s"] [data-field='
                                           '"tags"]' % board.name).text.split() == ["lamp", "porch"],
         what="the board's new tags on its card")
    assert api(server, token, "/api/devices/" + board.name)["tags"] == ["lamp", "porch"]
    wait(browser, lambda b: "porch (1)" in b.find_element(By.ID, "device-tag").text,
         what="the new tag among the filter's")

    # open the board: its own page lists its files, each with a delete button
    card.find_element(By.CSS_SELECTOR, "h2 a").click()
    wait(browser, lambda b: b.current_url.endswith("/device/" + board.name), what="its page")
    files = browser.find_element(By.CSS_SELECTOR, '[data-field="files"]')
    assert "main.py" in files.get_attribute("textContent")
    assert browser.find_elements(By.CSS_SELECTOR, 'button[aria-label="Delete main.py on %s"]'
                                 % board.name)

    # and push a file to it from there, through the push form
    browser.find_element(By.LINK_TEXT, "Push a file to " + board.name).click()
    wait(browser, lambda b: "/push" in b.current_url, what="the push form")
    box = browser.find_element(By.CSS_SELECTOR, 'input[name="device"][value="%s"]' % board.name)
    assert box.is_selected()  # the card's link chose the board
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="file"]'):
        if (box.get_attribute("data-sha1") == digest) != box.is_selected():
            box.click()
    browser.find_element(By.CSS_SELECTOR, "#push-form button[type=submit]").click()
    wait(browser, lambda b: "/pushes/" in b.current_url, what="the push's timeline")
    push = browser.find_element(By.CSS_SELECTOR, "[data-push]")
    wait(browser, lambda b: push.find_element(By.CSS_SELECTOR, '[data-field="state"]').text
         == "done", timeout=60, what="the push to be done")
    assert board.name in push.text and "porch.py" in push.text
    assert (board.flash_dir / "porch.py").read_bytes() == data
