"""Real Chromium through Selenium, for the e2e tests and the page benchmarks."""
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync")


def chromium(width=1280, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS + ("--window-size=%d,%d" % (width, height),):
        options.add_argument(flag)
    # Service() with a path: Selenium Manager never runs, nothing is downloaded.
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    browser.implicitly_wait(0)
    return browser


def first_login(browser, url, username, password, timeout=20):
    """Make the admin through the first-run page of a fresh server, as a newcomer does; ends
    on the devices page."""
    browser.get(url + "/")
    assert browser.current_url.endswith("/setup"), browser.current_url
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "confirm").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, timeout, 0.1).until(lambda b: b.current_url.rstrip("/") == url,
                                               "timed out waiting for the devices page")


def log_in(browser, url, username, password, timeout=20):
    """Through the login page (an admin exists); ends on the devices page."""
    browser.get(url + "/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(browser, timeout, 0.1).until(lambda b: b.current_url.rstrip("/") == url,
                                               "timed out waiting for the devices page")
