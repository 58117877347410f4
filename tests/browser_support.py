"""Headless Chromium against the real app served on loopback (issue 8).

One browser and one server per test module keep the browser tests fast. The
app runs in a thread of the test process (werkzeug's make_server), so the
frozen clock and the test database are shared with the test code.
Screenshots of failures go to test-artifacts/ (gitignored).
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


class LiveApp:
    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def live_env(redis_server, migrated_template, tmp_path_factory):
    """A module-wide world: database copy, demo community, console users, frozen clock."""
    from ground import clock
    from tests.conftest import _reset_singletons, seed_var_dir
    from tests.console_support import ADMIN_TOKEN, make_users

    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "guanjia.db"
    shutil.copy(migrated_template, db)
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", f"sqlite:///{db}")
    mp.setenv("REDIS_URL", redis_server.url)
    mp.setenv("GUANJIA_VAR_DIR", str(seed_var_dir(tmp / "var")))
    mp.setenv("GUANJIA_ADMIN_TOKEN", ADMIN_TOKEN)
    for name in ("WECHAT_APPID", "WECHAT_TOKEN", "WECOM_CORP_ID", "WECOM_TOKEN", "GUANJIA_FAKE_NOW"):
        mp.delenv(name, raising=False)
    _reset_singletons()
    from redis import Redis

    Redis.from_url(redis_server.url).flushall()
    original = clock.get_clock()
    fc = clock.FrozenClock(datetime(2026, 9, 15, 9, 0, tzinfo=clock.CST))
    clock.set_clock(fc)
    from bot.demo import load_demo
    from tests.console_support import _faq_copy

    load_demo()
    make_users()
    faq = _faq_copy(tmp)  # the knowledge base the console edits is a copy
    faq_dir = next(faq)
    yield {"tmp": tmp, "clock": fc, "faq_dir": faq_dir}
    faq.close()
    clock.set_clock(original)
    mp.undo()
    _reset_singletons()


@pytest.fixture(scope="module")
def live_app(live_env):
    from bot.web import create_app

    app = create_app()
    srv = LiveApp(app)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
        pytest.skip("Debian chromium / chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="guanjia-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=420,900"):  # a phone-sized window
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot_on_failure(fn):
    """Save a screenshot (and the page source) when the wrapped browser test fails."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException:
            driver = kwargs.get("browser")
            if driver is not None:
                ARTIFACTS.mkdir(exist_ok=True)
                driver.save_screenshot(str(ARTIFACTS / f"{fn.__name__}.png"))
                (ARTIFACTS / f"{fn.__name__}.html").write_text(driver.page_source, encoding="utf-8")
            raise
    return wrapper


def login(driver, base: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/console/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    button = driver.find_element(By.ID, "login-btn")
    button.click()
    # The click only starts the form post: wait for the next page, or a loaded
    # machine lets the test read the old one.
    wait_for(driver, gone(button), timeout=15.0)


def gone(element):
    """A wait condition: the element has left the document (the next page is there).
    Like selenium's staleness_of, but Chromium sometimes answers a node it is just
    discarding with an "unknown error ... does not belong to the document" instead of
    a stale-element error: that means gone too."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver) -> bool:
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
    return check


def wait_for(driver, cond, timeout: float = 5.0):
    """Wait until cond holds. A node the page re-rendered while cond read it is "not yet",
    as selenium takes a stale element: Chromium sometimes reports it as an "unknown error
    ... does not belong to the document" instead."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def guarded(d):
        try:
            return cond(d)
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False
            raise
    return WebDriverWait(driver, timeout).until(guarded)
