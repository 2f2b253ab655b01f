"""The simulator's phone page (/sim/phone): pushes built like WeChat's, posted to the real app over HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from server.wechat.simulator import create_simulator_app
from server.wechat.simulator.identity import identities
from server.wechat.simulator.serve import ThreadedServer
from tests.conftest import TEST_SECRETS


def _sim_app(callback_url):
    return create_simulator_app(
        oa_appid=TEST_SECRETS["WECHAT_OA_APPID"],
        oa_secret=TEST_SECRETS["WECHAT_OA_SECRET"],
        mp_appid=TEST_SECRETS["WECHAT_MP_APPID"],
        mp_secret=TEST_SECRETS["WECHAT_MP_SECRET"],
        oa_token=TEST_SECRETS["WECHAT_OA_TOKEN"],
        oa_aes_key=TEST_SECRETS["WECHAT_OA_AES_KEY"],
        callback_url=callback_url,
    )


@pytest.fixture(scope="module")
def app_server(app):
    """The UnionHub app itself, served over HTTP in a thread (the phone posts to its /wechat)."""
    server = ThreadedServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def phone_sim(app_server):
    """A second simulator whose phone page posts to the served app."""
    server = ThreadedServer(_sim_app(app_server.url + "/wechat")).start()
    yield server
    server.stop()


class Phone:
    def __init__(self, base: str):
        self.base = base

    def send(self, openid: str, kind: str, mode: str = "safe", **fields) -> requests.Response:
        return requests.post(self.base + "/sim/phone/send", json={"openid": openid, "kind": kind, "mode": mode, **fields}, timeout=15)

    def reply(self, openid: str, kind: str, mode: str = "safe", **fields) -> dict:
        response = self.send(openid, kind, mode, **fields)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == 200 and "error" not in body, body
        return body


@pytest.fixture
def phone(phone_sim):
    return Phone(phone_sim.url)


def test_the_page_renders_and_is_linked_from_the_landing_page(phone_sim):
    page = requests.get(phone_sim.url + "/sim/phone", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for needle in ("模拟手机", "/sim/phone/send", "/sim/messages", "安全", "兼容", "明文", "扫码", "关注公众号", "/wechat"):
        assert needle in html, needle
    assert "https://" not in html.replace("https://mp.weixin.qq.com", "")  # no CDN
    landing = requests.get(phone_sim.url + "/sim/", timeout=5).text
    assert 'href="/sim/phone"' in landing


def test_people_are_the_demo_workers_identities(phone_sim):
    from server.demo import demo_mp_openid

    people = requests.get(phone_sim.url + "/sim/phone/people", timeout=5).json()["people"]
    assert len(people) == 30
    assert people[0]["label"] == "演示职工1" and people[29]["label"] == "演示职工30"
    assert people[3]["oa_openid"] == identities(demo_mp_openid(3))["oa_openid"]


def test_menu_is_the_accounts_until_one_is_created(phone_sim):
    menu = requests.get(phone_sim.url + "/sim/phone/menu", timeout=5).json()
    keys = {b.get("key") for top in menu["menu"]["button"] for b in top.get("sub_button", [top])}
    assert {"MENU_HELP", "MENU_SUBSIDY", "MENU_COMPETITION"} <= keys
    st = phone_sim.app.extensions["simulator"]
    with st.lock:
        st.menu = {"button": [{"type": "click", "name": "只有一个", "key": "MENU_ONLY"}]}
    try:
        created = requests.get(phone_sim.url + "/sim/phone/menu", timeout=5).json()
        assert created["source"] == "created" and created["menu"]["button"][0]["key"] == "MENU_ONLY"
    finally:
        st.reset()


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_text_help_in_every_mode(phone, mode):
    body = phone.reply("oPhoneUser1", "text", mode, content="帮助")
    assert body["reply"]["type"] == "text" and "补贴" in body["reply"]["content"]
    assert "<MsgType><![CDATA[text]]></MsgType>" in body["raw_xml"]
    assert body["elapsed_ms"] > 0 and "帮助" in body["push_xml"]


def test_menu_click(phone):
    body = phone.reply("oPhoneUser2", "click", key="MENU_HELP")
    assert "<Event><![CDATA[CLICK]]></Event>" in body["push_xml"]
    assert body["reply"]["type"] == "text" and "补贴" in body["reply"]["content"]


def test_silent_events_answer_success(phone):
    assert phone.reply("oPhoneUser2", "view", key="https://example.invalid/x")["reply"] == {"type": "success"}
    assert phone.reply("oPhoneUser2", "miniprogram", key="pages/index")["reply"] == {"type": "success"}


def test_scan_and_follow_by_scan(phone, phone_sim):
    scan = phone.reply("oPhoneUser3", "scan", scene="comp:999")
    assert "<Event><![CDATA[SCAN]]></Event>" in scan["push_xml"] and "comp:999" in scan["push_xml"]
    assert "不存在或已下线" in scan["reply"]["content"]
    follow = phone.reply("oPhoneUser4", "scan", scene="comp:998", follow=True)
    assert "<EventKey><![CDATA[qrscene_comp:998]]></EventKey>" in follow["push_xml"]
    assert follow["reply"]["content"].startswith("欢迎关注")
    phone_sim.app.extensions["simulator"].reset()


def test_follow_and_unfollow(phone, phone_sim):
    st = phone_sim.app.extensions["simulator"]
    followed = phone.reply("oPhoneUser5", "subscribe")
    assert "欢迎关注" in followed["reply"]["content"] and st.seen("oPhoneUser5")
    left = phone.reply("oPhoneUser5", "unsubscribe")
    assert left["reply"] == {"type": "success"}
    assert not st.seen("oPhoneUser5")  # the simulator now refuses customer-service messages (43004)
    st.reset()


def test_bad_input_is_a_clear_400(phone):
    for fields in ({"kind": "text", "content": "  "}, {"kind": "dance"}, {"kind": "text", "content": "x", "mode": "loud"},
                   {"kind": "scan"}):
        response = phone.send("oPhoneUser6", **fields)
        assert response.status_code == 400 and response.json()["status"] == "error", fields
    response = requests.post(phone.base + "/sim/phone/send", json={"kind": "text", "content": "x"}, timeout=5)
    assert response.status_code == 400 and response.json()["error"] == "bad_openid"


def test_unreachable_or_missing_callback_is_a_clear_json_error(app):
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for callback, status, code in ((f"http://127.0.0.1:{port}/wechat", 502, "callback_unreachable"), (None, 503, "no_callback_url")):
        client = _sim_app(callback).test_client()
        response = client.post("/sim/phone/send", json={"openid": "oX", "kind": "text", "content": "帮助", "mode": "safe"})
        assert response.status_code == status
        body = response.get_json()
        assert body["status"] == "error" and body["error"] == code and body["message"]


def test_a_refused_push_reports_the_callbacks_status(app_server):
    wrong = create_simulator_app("wx_test_oa_appid", "s", "wx_test_mp_appid", "s", "not-the-token",
                                 TEST_SECRETS["WECHAT_OA_AES_KEY"], callback_url=app_server.url + "/wechat")
    response = wrong.test_client().post("/sim/phone/send", json={"openid": "oX", "kind": "text", "content": "帮助", "mode": "plain"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == 403 and body["error"] == "callback_status" and body["reply"] is None


def test_a_slow_answer_arrives_as_a_customer_service_message(simulator, app_server, run_jobs, monkeypatch, slow_subsidy_rules):
    """Past the bot budget the phone gets "稍后" at once, and the answer later shows up in /sim/messages.

    The app sends through the session simulator (its WECHAT_API_BASE), so this test points that
    simulator's phone at the app: the whole loop runs through one simulator, as in ``unionhub dev``.
    """
    slow_subsidy_rules("慢速回答：热线 12351")
    st = simulator.app.extensions["simulator"]
    monkeypatch.setattr(st.config, "callback_url", app_server.url + "/wechat")
    phone = Phone(simulator.url)
    openid = identities("phone-slow")["oa_openid"]
    body = phone.reply(openid, "text", content="补贴")
    assert "稍后" in body["reply"]["content"] and body["elapsed_ms"] < 1500
    deadline, found = time.monotonic() + 10, []
    while time.monotonic() < deadline and not found:
        run_jobs()
        found = requests.get(simulator.url + "/sim/messages", params={"touser": openid}, timeout=5).json()["messages"]
        time.sleep(0.1)
    [message] = found
    assert message["api"] == "message/custom/send"
    assert message["payload"]["text"]["content"] == "慢速回答：热线 12351"
    later = requests.get(simulator.url + "/sim/messages", params={"touser": openid, "since_id": message["id"]}, timeout=5)
    assert later.json()["messages"] == []
