"""The /sidebar page in headless Chromium with a stand-in for the WeCom JS-SDK:
it lists the group's suggestions and calls sendChatMessage with the right text."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.browser

# Recorded calls instead of WeCom: the page cannot tell the difference.
WX_STANDIN = """
window.__wxCalls = [];
window.wx = {
  invoke: function (name, args, cb) {
    window.__wxCalls.push({name: name, args: args});
    if (name === 'getCurExternalChat') { cb({err_msg: 'getCurExternalChat:ok', chatId: 'wr_vip_01'}); return; }
    cb({err_msg: name + ':ok'});
  },
  agentConfig: function (c) { c.success && c.success(); }
};
"""


@pytest.fixture
def live_app(demo, monkeypatch):
    from werkzeug.serving import make_server

    monkeypatch.setenv("GUANJIA_JSSDK_URL", "")  # no network in tests: the stand-in is injected instead
    from bot.config import reset_settings

    reset_settings()
    from bot.web import create_app

    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser(request):
    if not (shutil.which("chromedriver") or Path("/usr/bin/chromedriver").exists()):
        pytest.skip("chromium-driver is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=420,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WX_STANDIN})
    failed_before = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failed_before:  # the call phase's report is in before teardown
        out = ROOT / "test-artifacts"
        out.mkdir(exist_ok=True)
        driver.save_screenshot(str(out / f"{request.node.name}.png"))
    driver.quit()


def _suggest(texts: list[str], group: str = "wr_vip_01") -> list[int]:
    from store.db import session_scope
    from store.models.groups import GroupSuggestion

    ids = []
    with session_scope() as s:
        for i, t in enumerate(texts):
            row = GroupSuggestion(group_chat_id=group, staff_userid="kefu_xiaomei", reply_to="wm_li",
                                  question=f"问题{i}", text=t, intent="faq", dedup_key=f"t:{group}:{i}")
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


def test_sidebar_lists_and_sends(live_app, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from store.db import session_scope
    from store.models.groups import GroupSuggestion

    ids = _suggest(["游泳池每天 6:00-22:00 开放，周一 14:00 前换水。", "银卡升级条件：消费满5000元或连续居住满2年。"])
    _suggest(["别的群的建议"], group="wr_bld_2")

    # Opened from the toolbar with no parameters: the page asks WeCom which chat is open.
    browser.get(f"{live_app}/sidebar")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".s"))
    assert "group=wr_vip_01" in browser.current_url
    texts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".s .t")]
    assert texts == ["银卡升级条件：消费满5000元或连续居住满2年。", "游泳池每天 6:00-22:00 开放，周一 14:00 前换水。"]
    assert "别的群的建议" not in browser.page_source
    assert "尊享业主VIP群" in browser.find_element(By.TAG_NAME, "h1").text

    browser.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[0]}"]').click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[0]}"]').text == "已发送")
    calls = browser.execute_script("return window.__wxCalls")
    sends = [c for c in calls if c["name"] == "sendChatMessage"]
    assert sends == [{"name": "sendChatMessage", "args": {
        "msgtype": "text", "enterChat": True, "text": {"content": "游泳池每天 6:00-22:00 开放，周一 14:00 前换水。"}}}]
    with session_scope() as s:
        assert s.get(GroupSuggestion, ids[0]).state == "sent"
        assert s.get(GroupSuggestion, ids[1]).state == "pending"

    # Reloaded, the sent one is gone.
    browser.get(f"{live_app}/sidebar?group=wr_vip_01")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".s .t")] == [
        "银卡升级条件：消费满5000元或连续居住满2年。"]


def test_mark_sent_checks_the_group(live_app):
    import requests

    ids = _suggest(["x"])
    assert requests.post(f"{live_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_bld_2"}).status_code == 404
    assert requests.post(f"{live_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_vip_01"}).json()["state"] == "sent"
