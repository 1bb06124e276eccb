"""Screenshots for the README, taken from the real app: `make demo` must be running.

Run: .venv/bin/python -m tests.e2e.screenshots [--url http://127.0.0.1:8000]
Uploads a file, pushes it to the first demo device, and saves docs/img/*.png.
"""
import argparse
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--window-size=%d,%d" % (width, height), "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def log_in(b, args):
    """Through the first-run page on a fresh server, else the login page."""
    b.get(args.url + "/")
    if b.current_url.endswith("/setup"):
        b.find_element(By.ID, "confirm").send_keys(args.password)
    elif "/login" not in b.current_url:
        return
    b.find_element(By.ID, "username").send_keys(args.user)
    b.find_element(By.ID, "password").send_keys(args.password)
    b.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(b, 10, 0.1).until(lambda d: "/login" not in d.current_url
                                    and "/setup" not in d.current_url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--device", default="lamp-hall")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="night lamp 2026",
                        help="the admin's password (made on a fresh server)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    b = browser(1200, 760)
    until = WebDriverWait(b, 30, 0.1).until
    try:
        log_in(b, args)
        until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-device="%s"]' % args.device))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "main.py"
            path.write_text("import runtime\n# night lamp v2: the built-in LED stays off\n"
                            "runtime.main()\n")
            b.get(args.url + "/files")
            b.find_element(By.ID, "file-input").send_keys(str(path))
            until(lambda d: "stored" in d.find_element(By.CSS_SELECTOR, "#uploads .status").text)
        b.save_screenshot(str(OUT / "files.png"))
        b.get(args.url + "/push")
        b.find_element(By.CSS_SELECTOR, 'input[value="%s"]' % args.device).click()
        b.find_element(By.CSS_SELECTOR, "#push-form button[type=submit]").click()
        until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-push] [data-field="state"]')
              .text in ("done", "failed"))
        b.save_screenshot(str(OUT / "push-timeline.png"))
        b.get(args.url + "/")
        until(lambda d: d.find_elements(By.CSS_SELECTOR, "button.switch"))
        b.find_element(By.CSS_SELECTOR, '[data-device="%s"] summary' % args.device).click()
        b.save_screenshot(str(OUT / "devices.png"))
    finally:
        b.quit()
    phone = browser(390, 844)
    try:
        log_in(phone, args)
        WebDriverWait(phone, 30, 0.1).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".device"))
        phone.save_screenshot(str(OUT / "devices-phone.png"))
    finally:
        phone.quit()
    print("saved", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
