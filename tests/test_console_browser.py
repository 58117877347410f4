"""Browser tests of the console in headless Chromium (issue 8): logging in,
finding a late ticket and reassigning it, scheduling and cancelling an
announcement. Screenshots of failures land in test-artifacts/."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.browser_support import browser, live_app, live_env, login, screenshot_on_failure, wait_for  # noqa: F401
from ground.clock import CST
from tests.console_support import PASSWORD

pytestmark = pytest.mark.browser


@screenshot_on_failure
def test_login_and_roles(live_app, browser):
    base = live_app.url
    browser.get(base + "/console/today")
    assert "/console/login" in browser.current_url  # not logged in: sent to the login page
    login(browser, base, "staff", "wrong-password")
    assert browser.find_element(By.ID, "login-error").text == "用户名或密码错误"
    login(browser, base, "staff", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    assert "员工" in browser.find_element(By.ID, "whoami").text
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert "业主" not in nav and "公告" not in nav and "工单" in nav
    browser.get(base + "/console/owners")  # a staff login cannot open owner records
    assert browser.find_element(By.ID, "forbidden").is_displayed()
    login(browser, base, "manager", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    assert "业主" in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]


@screenshot_on_failure
def test_find_late_ticket_and_reassign(live_app, live_env, browser):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models.tickets import Ticket, TicketEvent
    from tests.console_support import make_ticket

    with session_scope() as s:
        late = make_ticket(s, minutes_ago=40, assignee="weixiu_laozhou", state="accepted", content="2楼楼道水管爆裂").id
        fine = make_ticket(s, minutes_ago=2, priority="general", content="草坪需要修剪", clock_minutes=600).id
    base = live_app.url
    login(browser, base, "supervisor", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    # Today shows the late ticket in red under 紧急.
    red = browser.find_element(By.CSS_SELECTOR, f'#class-urgent a.ticket.red[data-ticket="{late}"]')
    assert "超时" in red.text
    assert browser.find_elements(By.CSS_SELECTOR, f'#class-general a.ticket.green[data-ticket="{fine}"]')
    # The ticket list filtered to late ones has exactly it.
    browser.get(base + "/console/tickets")
    browser.find_element(By.ID, "f-late").click()
    browser.find_element(By.ID, "filter-btn").click()
    wait_for(browser, EC.url_contains("late=1"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#ticket-list tbody tr[data-ticket]")
    assert [r.get_attribute("data-ticket") for r in rows] == [str(late)]
    rows[0].find_element(By.LINK_TEXT, f"T{late}").click()
    wait_for(browser, EC.presence_of_element_located((By.ID, "reassign-form")))
    Select(browser.find_element(By.ID, "reassign-to")).select_by_value("weixiu_xiaoli")
    browser.find_element(By.ID, "reassign-reason").send_keys("老周在另一单现场")
    browser.find_element(By.ID, "reassign-btn").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "ticket-assignee"), "小李"))
    assert "转派" in browser.find_element(By.ID, "ticket-events").text
    with session_scope() as s:
        assert s.get(Ticket, late).assignee == "weixiu_xiaoli"
        ev = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == late, TicketEvent.action == "transferred"))
        assert ev.actor == "zhuguan_chen" and ev.detail["reason"] == "老周在另一单现场"


@screenshot_on_failure
def test_schedule_and_cancel_announcement(live_app, live_env, browser):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models.campaigns import Campaign

    base = live_app.url
    login(browser, base, "supervisor", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    browser.get(base + "/console/announcements")
    browser.find_element(By.ID, "ann-text").send_keys("本周六上午9点在中心广场举办中秋游园会")
    browser.find_element(By.CSS_SELECTOR, 'input[name="scope"][value="buildings"]').click()
    browser.find_element(By.CSS_SELECTOR, 'input[name="buildings"][value="1栋"]').click()
    browser.find_element(By.ID, "when-later").click()
    when = (live_env["clock"].now() + timedelta(days=4)).astimezone(CST).strftime("%Y-%m-%dT09:00")
    # datetime-local inputs take keyboard input per locale; setting the value is locale-proof.
    browser.execute_script("document.getElementById('ann-send-at').value = arguments[0]", when)
    browser.find_element(By.ID, "ann-submit").click()
    # Issue 14: the audience and its count are confirmed before anything is sent.
    wait_for(browser, EC.presence_of_element_located((By.ID, "ann-confirm")))
    assert browser.find_element(By.ID, "ann-audience").text == "1栋"
    browser.find_element(By.ID, "ann-confirm").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".flash.ok")))
    row = browser.find_element(By.CSS_SELECTOR, "#announcement-list tbody tr[data-announcement]")
    aid = int(row.get_attribute("data-announcement"))
    assert row.find_element(By.CLASS_NAME, "ann-state").text == "已排期"
    assert "1栋" in row.text and "09-19 09:00" in row.text
    with session_scope() as s:
        camp = s.get(Campaign, aid)
        assert camp.state == "scheduled" and camp.target == {"buildings": ["1栋"]}
    row.find_element(By.CLASS_NAME, "cancel-btn").click()
    browser.switch_to.alert.accept()
    wait_for(browser, EC.text_to_be_present_in_element(
        (By.CSS_SELECTOR, f'tr[data-announcement="{aid}"] .ann-state'), "已取消"))
    with session_scope() as s:
        assert s.scalar(select(Campaign).where(Campaign.id == aid)).state == "cancelled"


@screenshot_on_failure
def test_answer_a_miss_by_adding_a_phrasing(live_app, live_env, browser):
    from store.db import session_scope
    from store.models.faq import FaqMiss
    from tests.console_support import make_miss, wait_route

    question = "小区里能放风筝吗"
    # (semantic retrieval may already find the entry; the phrasing added below makes it certain)
    with session_scope() as s:
        mid = make_miss(s, question).id
    base = live_app.url
    login(browser, base, "supervisor", PASSWORD)
    wait_for(browser, EC.presence_of_element_located((By.ID, "whoami")))
    assert question in browser.find_element(By.ID, "today-misses").text  # Today lists it
    browser.find_element(By.LINK_TEXT, question).click()
    box = wait_for(browser, EC.presence_of_element_located((By.ID, f"miss-{mid}")))
    assert box.find_element(By.CLASS_NAME, "phrase-input").get_attribute("value") == question
    Select(box.find_element(By.CLASS_NAME, "entry-select")).select_by_value("prohibited-acts")
    box.find_element(By.CLASS_NAME, "add-phrasing-btn").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".flash.ok")))
    assert "prohibited-acts" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert not browser.find_elements(By.ID, f"miss-{mid}")  # no longer waiting
    res = wait_route(question, "prohibited-acts")
    assert res["intent"] == "faq" and res["faq_id"] == "prohibited-acts"
    with session_scope() as s:
        assert s.get(FaqMiss, mid).resolved
