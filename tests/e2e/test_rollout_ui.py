"""What a person does to roll a release out in the browser: a folder becomes a release, a
rollout to three devices stops after its canary for a go, and after the go every device runs
the release (real gunicorn, mosquitto, simulated devices and Chromium)."""
import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import started_sims, wait

pytestmark = pytest.mark.e2e

FILES = {"lamp_level.py": b"# the lamp's level, v2\nLEVEL = 2\n",
         "lib/colors.py": b"WARM = (255, 180, 90)\n"}


@pytest.fixture(scope="module")
def fleet(mosquitto, tmp_path_factory):
    """Three simulated devices with names unique to this module."""
    devices = started_sims(mosquitto, tmp_path_factory.mktemp("fleet"),
                           ("desk", "shelf", "attic"))
    yield devices
    for dev in devices:
        dev.stop()


def text(browser, selector):
    return browser.find_element(By.CSS_SELECTOR, selector).text


def rows(browser):
    """{device: (wave title, state, has a push link)} as the rollout page shows them."""
    shown = {}
    for wave in browser.find_elements(By.CSS_SELECTOR, "#rollout .wave"):
        title = wave.find_element(By.TAG_NAME, "h2").text
        for row in wave.find_elements(By.CSS_SELECTOR, "tbody tr"):
            cells = row.find_elements(By.TAG_NAME, "td")
            shown[cells[0].text] = (title, cells[1].text, bool(row.find_elements(By.TAG_NAME, "a")))
    return shown


def test_a_folder_becomes_a_release_rolled_out_canary_first_then_on_a_go(
        browser, server, fleet, tmp_path):
    folder = tmp_path / "lamp-v2"
    for target, data in FILES.items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        (folder / target).write_bytes(data)
    (folder / ".DS_Store").write_bytes(b"\0")  # left out, as `ota release create` does
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "lamp_level.cpython-311.pyc").write_bytes(b"\0")
    names = [d.name for d in fleet]

    # the folder, chosen (Selenium cannot drag one from the desktop)
    browser.get(server.url + "/releases")
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    wait(browser, lambda b: text(b, "#release-status") == "2 file(s) chosen.",
         what="the folder's files listed")
    assert sorted(li.text.split()[0] for li in
                  browser.find_elements(By.CSS_SELECTOR, "#release-files li")) == \
        sorted("lamp-v2/" + target for target in FILES)
    assert browser.find_element(By.ID, "release-name").get_attribute("value") == "lamp-v2"
    assert not browser.find_element(By.ID, "delete-extra").is_selected()
    browser.find_element(By.ID, "make-release").click()
    wait(browser, lambda b: text(b, "#release-status") == "Made release lamp-v2: 2 file(s).",
         what="the release to be made")
    release = '[data-release="lamp-v2"]'
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, release), what="the release listed")
    card = browser.find_element(By.CSS_SELECTOR, release)
    assert "lamp_level.py" in card.text and "lib/colors.py" in card.text
    assert "0 devices run it" in card.text

    # the same name again: the API's message, shown as it says it
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    browser.find_element(By.ID, "make-release").click()
    wait(browser, lambda b: "there is a release named lamp-v2 already" in
         text(b, "#release-status"), what="the refusal")

    # the roll-out form, once the three devices are online
    card.find_element(By.LINK_TEXT, "Roll out…").click()
    wait(browser, lambda b: "/rollouts/new" in b.current_url, what="the roll-out form")

    def all_online(b):
        labels = {box.get_attribute("value"): box.find_element(By.XPATH, "..").text
                  for box in b.find_elements(By.CSS_SELECTOR, 'input[name="device"]')}
        if all("online" in labels.get(n, "") for n in names):
            return True
        b.refresh()
        return False
    wait(browser, all_online, timeout=30, what="the three devices online in the form")
    assert browser.find_element(By.CSS_SELECTOR, "#release option:checked").get_attribute(
        "value") == "lamp-v2"
    for name in names:
        browser.find_element(By.CSS_SELECTOR, 'input[name="device"][value="%s"]' % name).click()
    canary = browser.find_element(By.ID, "canary")
    assert canary.get_attribute("value") == "1"
    assert not browser.find_element(By.ID, "auto-continue").is_selected()
    browser.find_element(By.CSS_SELECTOR, "#rollout-form button[type=submit]").click()
    wait(browser, lambda b: "/rollouts/" in b.current_url and "/new" not in b.current_url,
         what="the rollout's page")

    # the canary goes first, then the rollout waits for a go
    wait(browser, lambda b: "waiting for a go" in text(b, '[data-field="reason"]'),
         timeout=40, what="the canary to finish")
    assert text(browser, '[data-field="phase"]') == "waiting for a go"
    shown = rows(browser)
    canaries = [n for n, (title, _, _) in shown.items() if title == "Canary"]
    assert len(canaries) == 1 and shown[canaries[0]][1:] == ("done", True)
    assert sorted(n for n, (title, state, _) in shown.items()
                  if title == "Wave 1" and state == "pending") == sorted(set(names) - set(canaries))
    go = browser.find_element(By.CSS_SELECTOR, 'form[data-action="resume"] button')
    assert go.text == "Go" and go.is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, 'form[data-action="pause"]').is_displayed()

    go.click()
    wait(browser, lambda b: text(b, '[data-field="phase"]') == "done", timeout=40,
         what="the rollout to be done")
    assert all(state == "done" and linked for _, state, linked in rows(browser).values())
    assert set(rows(browser)) == set(names)
    bar = browser.find_element(By.CSS_SELECTOR, '[data-field="progress"]')
    assert bar.get_attribute("value") == bar.get_attribute("max") == "3"
    assert text(browser, '[data-field="counts"]') == "3 of 3 devices finished: 3 done"
    assert not any(f.is_displayed() for f in
                   browser.find_elements(By.CSS_SELECTOR, "#rollout-actions form"))

    # each device runs the release: the files on its flash, and the releases page counts them
    for dev in fleet:
        for target, data in FILES.items():
            assert (dev.flash_dir / target).read_bytes() == data
    browser.get(server.url + "/releases")
    wait(browser, lambda b: "3 devices run it" in text(b, release), timeout=15,
         what="the three devices counted on the release")
    browser.get(server.url + "/rollouts")
    assert "done" in text(browser, "#rollouts tbody tr") and "lamp-v2" in text(
        browser, "#rollouts tbody tr")
