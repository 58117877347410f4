"""The console in headless Chromium at desktop and phone size (issue 14): the
Today page, a ticket handled from its page (accept, progress, complete,
reassign, close), and every page without sideways scrolling at 390 px.

With GUANJIA_SCREENSHOTS=<dir> the tests also save the screenshots shown in the
README (scripts/screenshots.sh writes them to docs/).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.browser_support import browser, live_app, live_env, login, screenshot_on_failure, wait_for  # noqa: F401
from tests.console_support import PASSWORD

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1280, False), "phone": (390, True)}
SHOTS = os.environ.get("GUANJIA_SCREENSHOTS")
RULE_CODE = re.compile(r"(?<![A-Za-z])O\d+")
KEY_VALUE = re.compile(r"[A-Za-z_]+=\S")


@pytest.fixture(scope="module")
def world(live_env):
    from bot.console.auth import create_user
    from store.db import session_scope
    from tests.console_world import seed

    from sqlalchemy import update

    from store.models import ConsoleUser

    ids = seed(live_env["clock"])
    with session_scope() as s:
        create_user(s, "laozhou", "老周", "staff", PASSWORD, "weixiu_laozhou", hash_method="pbkdf2:sha256:1000")
        # The screenshots show the demo community's people, not test accounts.
        for username, name in (("supervisor", "陈主管"), ("manager", "林经理"), ("staff", "小美")):
            s.execute(update(ConsoleUser).where(ConsoleUser.username == username).values(name=name))
    return ids


def size(driver, name: str, height: int = 900) -> None:
    """The viewport of a desktop browser or a phone (390 CSS px wide, like an iPhone 14)."""
    width, mobile = SIZES[name]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile})


def snap(driver, name: str, which: str) -> None:
    """A full-page screenshot into $GUANJIA_SCREENSHOTS (nothing otherwise)."""
    if not SHOTS:
        return
    h = driver.execute_script("return Math.ceil(document.documentElement.getBoundingClientRect().height)")
    size(driver, which, min(max(h, 600), 4000))
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    Path(SHOTS, f"console-{name}-{which}.png").write_bytes(driver.get_screenshot_as_png())
    size(driver, which)


def no_sideways_scroll(driver) -> None:
    over = driver.execute_script("""
        const w = document.documentElement.clientWidth;
        const wide = [...document.querySelectorAll('body *')].filter(e => {
          const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; });
        return {page: document.documentElement.scrollWidth, view: w,
                wide: wide.slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 30))};
    """)
    assert over["page"] <= over["view"], over


def words_only(driver) -> None:
    text = driver.find_element(By.TAG_NAME, "body").text
    assert not RULE_CODE.search(text) and not KEY_VALUE.search(text), text[:500]


def go(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, EC.presence_of_element_located((By.TAG_NAME, "main")))


@pytest.mark.parametrize("which", ["desktop", "phone"])
@screenshot_on_failure
def test_today_at_desktop_and_phone(live_app, world, browser, which):
    base = live_app.url
    size(browser, which)
    login(browser, base, "supervisor", PASSWORD)
    go(browser, base + "/console/today")
    leak = browser.find_element(By.CSS_SELECTOR, f'#class-urgent a.ticket.red[data-ticket="{world["leak"]}"]')
    assert "到场 超时" in leak.text and "老周" in leak.text
    lift = browser.find_element(By.CSS_SELECTOR, f'#class-important a.ticket[data-ticket="{world["lift"]}"]')
    assert "负责人接单 剩余" in lift.text and "08:50 登记" in lift.text
    assert "家政保洁" in browser.find_element(By.ID, "today-bookings").text
    assert "广告 → 警告" in browser.find_element(By.ID, "today-moderation").text
    words_only(browser)
    no_sideways_scroll(browser)
    view = browser.execute_script("return document.documentElement.clientWidth")
    for a in browser.find_elements(By.CSS_SELECTOR, "header nav a"):  # every menu item on screen
        r = browser.execute_script("return arguments[0].getBoundingClientRect().right", a)
        assert a.is_displayed() and r <= view, (a.text, r, view)
    snap(browser, "today", which)


@screenshot_on_failure
def test_handle_a_ticket_from_its_page(live_app, live_env, world, browser):
    from store.db import session_scope
    from store.models.tickets import Ticket

    base, lift, fc = live_app.url, world["lift"], live_env["clock"]
    with session_scope() as s:  # the lift's work card reached 老周 (building scope: those it went to may open it)
        t = s.get(Ticket, lift)
        t.notified = list(t.notified or []) + ["weixiu_laozhou"]
    size(browser, "desktop")
    login(browser, base, "laozhou", PASSWORD)
    go(browser, f"{base}/console/tickets/{lift}")
    fc.advance(minutes=2)
    browser.find_element(By.ID, "accept-btn").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".flash.ok")))
    assert "您已接单" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert browser.find_element(By.ID, "ticket-assignee").text == "老周"
    assert "09:02 老周接单" in browser.find_element(By.ID, "ticket-events").text
    fc.advance(minutes=13)
    browser.find_element(By.ID, "progress-note").send_keys("已联系电梯维保公司，10点前到场")
    browser.find_element(By.ID, "progress-btn").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "ticket-events"), "09:15 老周更新进展：已联系电梯维保公司"))
    words_only(browser)
    snap(browser, "ticket", "desktop")
    # On the phone the result form works the same.
    size(browser, "phone")
    go(browser, f"{base}/console/tickets/{lift}")
    no_sideways_scroll(browser)
    snap(browser, "ticket", "phone")
    fc.advance(minutes=25)  # under the console's 30 idle minutes
    browser.find_element(By.ID, "complete-note").send_keys("更换了按钮面板，电梯运行正常")
    browser.find_element(By.ID, "complete-btn").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "ticket-state"), "已完成"))
    assert "09:40 老周处理完成：更换了按钮面板" in browser.find_element(By.ID, "ticket-events").text
    words_only(browser)
    with session_scope() as s:
        t = s.get(Ticket, lift)
        assert t.state == "completed" and t.result_note == "更换了按钮面板，电梯运行正常"


@screenshot_on_failure
def test_supervisor_reassigns_and_closes(live_app, world, browser):
    from store.db import session_scope
    from store.models.tickets import Ticket

    base, t = live_app.url, world["rubbish"]
    size(browser, "phone")
    login(browser, base, "supervisor", PASSWORD)
    go(browser, f"{base}/console/tickets/{t}")
    Select(browser.find_element(By.ID, "reassign-to")).select_by_value("baojie_ayi")
    browser.find_element(By.ID, "reassign-reason").send_keys("保洁负责垃圾桶")
    browser.find_element(By.ID, "reassign-btn").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "ticket-assignee"), "王阿姨"))
    assert "陈主管转派给王阿姨（保洁负责垃圾桶）" in browser.find_element(By.ID, "ticket-events").text
    browser.find_element(By.ID, "close-reason").send_keys("业主已撤回")
    browser.find_element(By.ID, "close-btn").click()
    browser.switch_to.alert.accept()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "ticket-state"), "已办结"))
    assert "工单办结（业主已撤回）" in browser.find_element(By.ID, "ticket-events").text
    assert not browser.find_elements(By.ID, "close-form")
    with session_scope() as s:
        assert s.get(Ticket, t).state == "closed"


PAGES = ["/console/tickets", "/console/tickets?state=closed", "/console/satisfaction", "/console/kb",
         "/console/roster", "/console/owners?q=李", "/console/audit", "/console/announcements",
         "/console/owners/import"]
SHOT_PAGES = {"/console/tickets": "tickets", "/console/satisfaction": "satisfaction", "/console/audit": "audit"}


@pytest.mark.parametrize("which", ["desktop", "phone"])
@screenshot_on_failure
def test_every_page_fits_the_screen(live_app, world, browser, which):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import Owner

    base = live_app.url
    with session_scope() as s:
        li = s.scalar(select(Owner).where(Owner.openid == "o_li")).id
    size(browser, which)
    login(browser, base, "manager", PASSWORD)
    for path in PAGES + [f"/console/owners/{li}"] + [f"/console/tickets/{i}" for i in world.values()]:
        go(browser, base + path)
        assert browser.find_elements(By.ID, "whoami"), path
        no_sideways_scroll(browser)
        words_only(browser)
        if path in SHOT_PAGES:
            snap(browser, SHOT_PAGES[path], which)
        if path == f"/console/owners/{li}":
            assert "家政保洁" in browser.find_element(By.ID, "owner-bookings").text
            assert "厨房水管爆裂" in browser.find_element(By.ID, "owner-tickets").text
            assert "近12个月" in browser.find_element(By.ID, "owner-spend").text
            snap(browser, "owner", which)
