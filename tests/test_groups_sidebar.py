"""The /sidebar page in headless Chromium with a stand-in for the WeCom JS-SDK:
the staff member signs in through the fake platform's OAuth pages, the page
configures the SDK (wx.config, then wx.agentConfig; once more after a refused
signature), lists the group's suggestions
and calls sendChatMessage with the right text."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures_platform import AGENT_ID, CORP_ID
from tests.sidebar_support import sidebar_app, sign_in, suggest  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

# Recorded calls instead of WeCom: the page cannot tell the difference.
WX_STANDIN = """
window.__wxCalls = [];
window.__wxFail = {};  // {config: n, agentConfig: n}: refuse the next n, as WeCom does a stale ticket's signature
(function () {
  var readyFns = [], errorFns = [];  // they stack up, as the real SDK's do
  function refuse(name) { if (window.__wxFail[name] > 0) { window.__wxFail[name]--; return true; } return false; }
  function signed(c) { return {timestamp: c.timestamp, nonceStr: c.nonceStr, signature: c.signature,
                               jsApiList: c.jsApiList}; }
  window.wx = {
    invoke: function (name, args, cb) {
      window.__wxCalls.push({name: name, args: args});
      if (name === 'getCurExternalChat') { cb({err_msg: 'getCurExternalChat:ok', chatId: 'wr_vip_01'}); return; }
      cb({err_msg: name + ':ok'});
    },
    config: function (c) {
      var args = signed(c); args.appId = c.appId; args.beta = c.beta;
      window.__wxCalls.push({name: 'config', args: args});
      var bad = refuse('config');
      setTimeout(function () {
        (bad ? errorFns : readyFns).forEach(function (fn) { fn(bad ? {errMsg: 'config:fail'} : undefined); });
      }, 0);
    },
    ready: function (fn) { readyFns.push(fn); },
    error: function (fn) { errorFns.push(fn); },
    agentConfig: function (c) {
      var args = signed(c); args.corpid = c.corpid; args.agentid = c.agentid;
      window.__wxCalls.push({name: 'agentConfig', args: args});
      if (refuse('agentConfig')) { c.fail && c.fail({errMsg: 'agentConfig:fail, invalid signature'}); return; }
      c.success && c.success();
    }
  };
})();
"""


def _signature(ticket: str, c: dict, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={c['nonceStr']}&timestamp={c['timestamp']}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


@pytest.fixture
def live_app(sidebar_app, fake_platform):
    """The app, with the fake's authorize page signing in the VIP group's staff admin."""
    fake_platform.config(oauth_authorize_user="kefu_xiaomei", agent_config_ticket="browser-ticket",
                         jsapi_ticket="browser-corp-ticket")
    return sidebar_app


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
    return suggest(texts, group=group)


def test_sidebar_lists_and_sends(live_app, browser, fake_platform):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from store.db import session_scope
    from store.models.groups import GroupSuggestion

    ids = _suggest(["游泳池每天 6:00-22:00 开放，周一 14:00 前换水。", "银卡升级条件：消费满5000元或连续居住满2年。"])
    _suggest(["别的群的建议"], group="wr_bld_2")

    # Opened from the toolbar with no parameters and no session: WeCom's (the fake's) OAuth
    # page signs the member in and comes back; then the page asks WeCom which chat is open.
    browser.get(f"{live_app}/sidebar")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".s"))
    assert "group=wr_vip_01" in browser.current_url
    assert browser.get_cookie("guanjia_sidebar")
    texts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".s .t")]
    assert texts == ["银卡升级条件：消费满5000元或连续居住满2年。", "游泳池每天 6:00-22:00 开放，周一 14:00 前换水。"]
    assert "别的群的建议" not in browser.page_source
    assert "尊享业主VIP群" in browser.find_element(By.TAG_NAME, "h1").text

    browser.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[0]}"]').click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[0]}"]').text == "已发送")
    calls = browser.execute_script("return window.__wxCalls")
    sends = [c for c in calls if c["name"] == "sendChatMessage"]
    # The SDK was configured first (once for this page), signed for its URL: wx.config with the
    # company's ticket, then wx.agentConfig with the app's.
    assert [c["name"] for c in calls] == ["config", "agentConfig", "sendChatMessage"]
    w, c = calls[0]["args"], calls[1]["args"]
    assert w["appId"] == CORP_ID and w["beta"] is True
    assert c["corpid"] == CORP_ID and c["agentid"] == AGENT_ID
    assert c["jsApiList"] == w["jsApiList"] == ["sendChatMessage", "getCurExternalChat"]
    url = browser.current_url.split("#")[0]
    assert w["signature"] == _signature("browser-corp-ticket", w, url)
    assert c["signature"] == _signature("browser-ticket", c, url)
    assert sends == [{"name": "sendChatMessage", "args": {
        "msgtype": "text", "enterChat": True, "text": {"content": "游泳池每天 6:00-22:00 开放，周一 14:00 前换水。"}}}]
    with session_scope() as s:
        assert s.get(GroupSuggestion, ids[0]).state == "sent"
        assert s.get(GroupSuggestion, ids[1]).state == "pending"

    # Reloaded, the sent one is gone.
    browser.get(f"{live_app}/sidebar?group=wr_vip_01")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".s .t")] == [
        "银卡升级条件：消费满5000元或连续居住满2年。"]

    # WeCom refuses the app ticket's signature (it was replaced): the page has the server drop
    # its cached ticket, fetches a config signed with the new one and sends.
    fake_platform.config(agent_config_ticket="browser-ticket-2")
    browser.execute_script("window.__wxFail = {agentConfig: 1}")
    browser.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[1]}"]').click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'button[data-id="{ids[1]}"]').text == "已发送")
    calls = browser.execute_script("return window.__wxCalls")
    assert [c["name"] for c in calls] == ["config", "agentConfig", "config", "agentConfig", "sendChatMessage"]
    url = browser.current_url.split("#")[0]
    assert calls[2]["args"]["signature"] == _signature("browser-corp-ticket", calls[2]["args"], url)
    assert calls[3]["args"]["signature"] == _signature("browser-ticket-2", calls[3]["args"], url)
    assert len(fake_platform.sent("/cgi-bin/ticket/get")) == 2
    assert len(fake_platform.sent("/cgi-bin/get_jsapi_ticket")) == 1


def test_mark_sent_checks_the_group(live_app, fake_platform):
    http = sign_in(live_app, fake_platform, "kefu_xiaomei")
    ids = _suggest(["x"])
    assert http.post(f"{live_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_bld_2"}).status_code == 404
    assert http.post(f"{live_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_vip_01"}).json()["state"] == "sent"
