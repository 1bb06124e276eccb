"""End to end: real Chromium (Selenium) → real gunicorn → real mosquitto → simulated devices.

On failure a test leaves a screenshot and the page source in tests/e2e/artifacts/.
"""
import secrets
from pathlib import Path

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

from dcc_sim.launcher import SimDevice
from tests.support.browser import chromium, first_login
from tests.support.server import Gunicorn

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MAX_UPLOAD = 64 * 1024
OFFLINE_WAIT = 8  # seconds a push waits for an offline device (the test acts within it)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


@pytest.fixture(scope="module")
def server(mosquitto, tmp_path_factory):
    with Gunicorn(tmp_path_factory.mktemp("server"), MQTT_BROKER_URL="127.0.0.1",
                  MQTT_BROKER_PORT=mosquitto.port, OTA_MAX_UPLOAD=MAX_UPLOAD,
                  OTA_TRANSFER_TIMEOUT=5, OTA_OFFLINE_WAIT=OFFLINE_WAIT) as gunicorn:
        yield gunicorn


def started_sims(mosquitto, root, names):
    """Simulated devices named NAME-xxxx (unique to the caller), started; stop each after."""
    tag = secrets.token_hex(2)
    return [SimDevice("%s-%s" % (name, tag), root / name, broker_port=mosquitto.port,
                      heartbeat=2, settings={"confirm_after": 1}).start() for name in names]


@pytest.fixture(scope="module")
def sims(mosquitto, tmp_path_factory):
    """Two simulated devices with names unique to this module: sims[0], sims[1]."""
    devices = started_sims(mosquitto, tmp_path_factory.mktemp("flash"), ("hall", "porch"))
    yield devices
    for dev in devices:
        dev.stop()


@pytest.fixture(scope="module")
def driver():
    browser = chromium()
    yield browser
    browser.quit()


ADMIN, PASSWORD = "admin", "night lamp 2026"


@pytest.fixture(scope="module")
def logged_in(driver, server):
    """The first visit goes through the first-run page, as a newcomer's does."""
    first_login(driver, server.url, ADMIN, PASSWORD)
    return driver


@pytest.fixture
def browser(logged_in, request):
    """The shared, logged-in browser; on failure the page is saved under tests/e2e/artifacts/."""
    driver = logged_in
    yield driver
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = ARTIFACTS / request.node.name.replace("/", "_")
        driver.save_screenshot(str(stem) + ".png")
        stem.with_suffix(".html").write_text(driver.page_source)


def wait(browser, condition, timeout=20, what="the page"):
    """WebDriverWait with a message that says what never happened. An element that vanishes
    while the page changes (a redirect, a live update) just means: not yet."""
    return WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=(
        StaleElementReferenceException, NoSuchElementException)).until(
        lambda b: condition(b), "timed out waiting for %s" % what)
