"""The consultation inbox in headless Chromium, at desktop and phone size
(issue 14): a staff member finds the owner's question with its clock in
words, answers it, and the answer reaches the owner through the fake platform."""
from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests import platform as P
from tests.browser_support import browser, gone, live_app, live_env, login, screenshot_on_failure, wait_for  # noqa: F401
from tests.console_support import PASSWORD

pytestmark = pytest.mark.browser


def _channels_on(monkeypatch, fake) -> None:
    from ground.config import reset_settings
    from bot.outbound.clients import reset_clients

    for k, v in P.channel_env(fake.base_url).items():
        monkeypatch.setenv(k, v)
    reset_settings()
    reset_clients()


def _case(openid: str, text: str) -> int:
    from sqlalchemy import select

    from ground import clock
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope
    from store.models import Consultation, Owner

    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == openid)).last_inbound_at = clock.now()
        handle(Context(s, clock.now()), Message(channel="mp", sender=openid, text=text))
        return s.scalar(select(Consultation).where(Consultation.sender == openid)).id


def _shot(driver, name: str) -> None:
    """GUANJIA_SCREENSHOTS_DIR=docs/screenshots: keep the page as the README shows it."""
    import os
    from pathlib import Path

    where = os.environ.get("GUANJIA_SCREENSHOTS_DIR")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / f"{name}.png"))


def _no_sideways_scroll(driver) -> None:
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("size", [(1280, 900), (420, 900)], ids=["desktop", "phone"])
@screenshot_on_failure
def test_inbox_reply_reaches_the_owner(live_app, live_env, browser, fake_platform, monkeypatch, size):
    _channels_on(monkeypatch, fake_platform)
    openid = "o_chen" if size[0] > 600 else "o_zhou"  # their cards reach every customer-service member (a 银卡 owner's reach only their agent)
    question = "请问小区附近有没有好的钢琴老师推荐" if size[0] > 600 else "我想问下小区能不能装个充电桩"
    n = _case(openid, question)
    browser.set_window_size(*size)
    base = live_app.url
    login(browser, base, "staff", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    browser.get(base + "/console/consultations/")
    row = browser.find_element(By.CSS_SELECTOR, f'#consult-list tr[data-consult="{n}"]')
    assert question in row.text and "首次回复 剩余" in row.text
    assert not re.search(r"\bO\d+\b", browser.find_element(By.TAG_NAME, "main").text)
    _no_sideways_scroll(browser)
    kind = "desktop" if size[0] > 600 else "phone"
    _shot(browser, f"consultations-{kind}")
    row.find_element(By.LINK_TEXT, f"C{n}").click()
    wait_for(browser, EC.presence_of_element_located((By.ID, "consult-reply-text")))
    assert question in browser.find_element(By.ID, "consult-question").text
    _no_sideways_scroll(browser)
    answer = "您好！业委会换届定在十月，届时会在公告栏通知。"
    browser.find_element(By.ID, "consult-reply-text").send_keys(answer)
    button = browser.find_element(By.ID, "consult-reply-btn")
    button.click()
    wait_for(browser, gone(button), timeout=15.0)
    assert "已回复业主" in browser.find_element(By.TAG_NAME, "main").text
    assert answer in browser.find_element(By.ID, "consult-entries").text
    assert browser.find_element(By.ID, "consult-state").text == "已回复"
    _shot(browser, f"consultation-{kind}")
    P.drain_queues()
    sent = [x["json"] for x in fake_platform.sent("/cgi-bin/message/custom/send") if x["json"]["touser"] == openid]
    assert sent and sent[-1]["text"]["content"] == answer
