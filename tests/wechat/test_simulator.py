"""The WeChat simulator: WeChat's shapes and codes, recording, faults, limits."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from server.wechat.simulator.identity import identities
from tests.conftest import TEST_SECRETS

OA, OA_SECRET = TEST_SECRETS["WECHAT_OA_APPID"], TEST_SECRETS["WECHAT_OA_SECRET"]
MP, MP_SECRET = TEST_SECRETS["WECHAT_MP_APPID"], TEST_SECRETS["WECHAT_MP_SECRET"]


@pytest.fixture
def sim(simulator):
    """A small client for the running simulator: ``sim.get/post(path, ...)`` answer parsed JSON."""

    class Sim:
        url = simulator.url
        state = simulator.app.extensions["simulator"]

        def get(self, path, **params):
            return requests.get(self.url + path, params=params, timeout=5).json()

        def post(self, path, body=None, **params):
            return requests.post(self.url + path, params=params, json=body, timeout=5).json()

        def token(self, appid=OA, secret=OA_SECRET):
            answer = self.get("/cgi-bin/token", grant_type="client_credential", appid=appid, secret=secret)
            return answer["access_token"]

    return Sim()


def template(touser, **data):
    return {"touser": touser, "template_id": "tpl-1", "data": {k: {"value": v} for k, v in data.items()}}


def test_token_for_both_apps_and_bad_credentials(sim):
    answer = sim.get("/cgi-bin/token", grant_type="client_credential", appid=OA, secret=OA_SECRET)
    assert answer["expires_in"] == 7200 and len(answer["access_token"]) > 32
    assert sim.token(MP, MP_SECRET) != answer["access_token"]
    bad_appid = sim.get("/cgi-bin/token", grant_type="client_credential", appid="wx_nope", secret=OA_SECRET)
    bad_secret = sim.get("/cgi-bin/token", grant_type="client_credential", appid=OA, secret="wrong")
    assert bad_appid["errcode"] == 40013
    assert bad_secret["errcode"] == 40125
    assert (sim.state.token_count(OA), sim.state.token_count(MP)) == (1, 1)


def test_stable_token_reuses_until_forced(sim):
    body = {"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET}
    first = sim.post("/cgi-bin/stable_token", body)
    again = sim.post("/cgi-bin/stable_token", body)
    assert again["access_token"] == first["access_token"] and again["expires_in"] <= 7200
    forced = sim.post("/cgi-bin/stable_token", {**body, "force_refresh": True})
    assert forced["access_token"] != first["access_token"]
    assert sim.state.token_count(OA) == 2
    assert sim.post("/cgi-bin/stable_token", {**body, "secret": "x"})["errcode"] == 40125


def test_apis_check_the_access_token(sim):
    assert sim.get("/cgi-bin/user/info", openid="o1")["errcode"] == 41001
    assert sim.get("/cgi-bin/user/info", openid="o1", access_token="forged")["errcode"] == 40001
    token = sim.token()
    assert sim.get("/cgi-bin/user/info", openid="o1", access_token=token)["subscribe"] == 1
    mp_token = sim.token(MP, MP_SECRET)
    assert sim.get("/cgi-bin/user/info", openid="o1", access_token=mp_token)["errcode"] == 48001
    requests.post(sim.url + "/sim/tokens/expire", timeout=5)
    assert sim.get("/cgi-bin/user/info", openid="o1", access_token=token)["errcode"] == 42001


def test_token_ttl_setting_and_reset_restores_it(sim):
    assert sim.post("/sim/config", {"token_ttl": 1})["token_ttl"] == 1
    answer = sim.get("/cgi-bin/token", grant_type="client_credential", appid=OA, secret=OA_SECRET)
    assert answer["expires_in"] == 1
    time.sleep(1.05)
    assert sim.get("/cgi-bin/user/info", openid="o1", access_token=answer["access_token"])["errcode"] == 42001
    sim.state.reset()
    assert sim.get("/sim/config")["token_ttl"] == 7200
    assert sim.state.token_count(OA) == 0


def test_jscode2session_links_to_the_oa_identity_and_codes_are_single_use(sim):
    def login(code, secret=MP_SECRET):
        return sim.get("/sns/jscode2session", appid=MP, secret=secret, js_code=code, grant_type="authorization_code")

    who = identities("alice")
    answer = login("sim:alice")
    assert answer["openid"] == "alice" and answer["unionid"] == who["unionid"] and answer["session_key"]
    assert login("sim:alice")["errcode"] == 40163
    assert login("sim:alice#2")["openid"] == "alice"
    assert login("wx-real-code")["errcode"] == 40029
    assert login("sim:bob", secret="wrong")["errcode"] == 40125
    info = sim.get("/cgi-bin/user/info", openid=who["oa_openid"], access_token=sim.token())
    assert info["unionid"] == answer["unionid"]


def test_template_rules(sim):
    token = sim.token()
    send = lambda body: sim.post("/cgi-bin/message/template/send", body, access_token=token)  # noqa: E731
    assert send(template("oA", thing1="字" * 21))["errcode"] == 47003
    assert send(template("oA", thing1="第一行\n第二行"))["errcode"] == 47003
    assert send(template("oA", character_string2="A" * 32, thing1="字" * 20))["errcode"] == 0
    assert send({"touser": "oA", "template_id": "tpl-1"})["errcode"] == 47001
    assert send(template("", thing1="x"))["errcode"] == 40003
    # first/remark are ignored by WeChat since 2023: accepted whatever their length, and recorded.
    ok = send(template("oA", first="很长的开头\n" * 10, remark="备注", thing1="会员福利"))
    assert ok["errcode"] == 0 and ok["msgid"] > 0
    recorded = sim.get("/sim/messages", touser="oA")["messages"][-1]
    assert recorded["id"] == ok["msgid"] and recorded["payload"]["data"]["first"]["value"].startswith("很长")
    requests.post(sim.url + "/sim/users/oA/unsubscribe", timeout=5)
    assert send(template("oA", thing1="x"))["errcode"] == 43004
    assert sim.get("/cgi-bin/user/info", openid="oA", access_token=token)["subscribe"] == 0


def test_recording_and_message_filters(sim):
    token = sim.token()
    sim.post("/cgi-bin/message/template/send", template("oA", thing1="活动通知"), access_token=token)
    custom = {"touser": "oB", "msgtype": "text", "text": {"content": "您好"}}
    assert sim.post("/cgi-bin/message/custom/send", custom, access_token=token)["errcode"] == 0
    fax = sim.post("/cgi-bin/message/custom/send", {**custom, "msgtype": "fax"}, access_token=token)
    assert fax["errcode"] == 40008
    sim.post("/cgi-bin/webhook/send", {"msgtype": "text", "text": {"content": "告警"}}, key="k1")

    everything = sim.get("/sim/messages")["messages"]
    assert [m["api"] for m in everything] == ["message/template/send", "message/custom/send", "webhook/send"]
    assert everything[0]["appid"] == OA and everything[0]["template_id"] == "tpl-1"
    assert everything[2]["webhook_key"] == "k1" and everything[2]["msgtype"] == "text"
    assert [m["touser"] for m in sim.get("/sim/messages", touser="oB")["messages"]] == ["oB"]
    assert len(sim.get("/sim/messages", api="/cgi-bin/message/custom/send")["messages"]) == 1
    assert [m["id"] for m in sim.get("/sim/messages", since_id=everything[0]["id"])["messages"]] == [
        everything[1]["id"], everything[2]["id"]]
    requests.delete(sim.url + "/sim/messages", timeout=5)
    assert sim.get("/sim/messages")["messages"] == []


def test_fault_injection(sim):
    token = sim.token()
    custom = {"touser": "oA", "msgtype": "text", "text": {"content": "hi"}}
    send = lambda: sim.post("/cgi-bin/message/custom/send", custom, access_token=token)  # noqa: E731

    sim.post("/sim/faults", {"api": "message/custom/send", "errcode": 45011, "count": 2})
    assert [send()["errcode"] for _ in range(3)] == [45011, 45011, 0]

    sim.post("/sim/faults", {"api": "*", "errcode": -1})
    assert sim.get("/cgi-bin/token", grant_type="client_credential", appid=OA, secret=OA_SECRET)["expires_in"] == 7200
    assert send() == {"errcode": -1, "errmsg": "system error"}
    assert send()["errcode"] == 0

    sim.post("/sim/faults", {"api": "/cgi-bin/message/custom/send", "http_status": 500})
    res = requests.post(sim.url + "/cgi-bin/message/custom/send", params={"access_token": token}, json=custom,
                        timeout=5)
    assert res.status_code == 500

    sim.post("/sim/faults", {"api": "message/custom/send", "latency_ms": 300})
    started = time.perf_counter()
    assert send()["errcode"] == 0
    assert time.perf_counter() - started >= 0.3

    sim.post("/sim/faults", {"api": "message/custom/send", "errcode": 43004, "count": 5})
    requests.delete(sim.url + "/sim/faults", timeout=5)
    assert send()["errcode"] == 0
    assert len(sim.get("/sim/messages")["messages"]) == 4  # only accepted messages are recorded
    assert requests.post(sim.url + "/sim/faults", json={"api": "x"}, timeout=5).status_code == 400


def test_webhook_limit_and_failures(sim):
    text = {"msgtype": "text", "text": {"content": "每分钟最多二十条"}}
    answers = [sim.post("/cgi-bin/webhook/send", text, key="bot-a")["errcode"] for _ in range(21)]
    assert answers[:20] == [0] * 20 and answers[20] == 45009
    assert sim.post("/cgi-bin/webhook/send", text, key="bot-b")["errcode"] == 0
    too_long = {"msgtype": "text", "text": {"content": "字" * 683}}  # 2049 bytes
    assert sim.post("/cgi-bin/webhook/send", too_long, key="bot-b")["errcode"] == 40058
    markdown = {"msgtype": "markdown", "markdown": {"content": "**加粗**" * 100}}
    assert sim.post("/cgi-bin/webhook/send", markdown, key="bot-b")["errcode"] == 0
    sim.post("/sim/webhooks/bot-c/fail", {"errcode": 93000})
    assert sim.post("/cgi-bin/webhook/send", text, key="bot-c")["errcode"] == 93000
    assert sim.post("/cgi-bin/webhook/send", text)["errcode"] == 93000
    assert len(sim.get("/sim/messages", api="webhook/send")["messages"]) == 22


def test_mp_subscribe_consent_ledger(sim):
    token = sim.token(MP, MP_SECRET)
    body = {**template("alice", thing1="报名成功", time2="2024年5月1日"), "page": "pages/index/index",
            "miniprogram_state": "formal", "lang": "zh_CN"}
    send = lambda: sim.post("/cgi-bin/message/subscribe/send", body, access_token=token)  # noqa: E731
    assert send()["errcode"] == 0  # lenient by default
    sim.post("/sim/consents", {"openid": "alice", "template_id": "tpl-1", "count": 1})
    assert [send()["errcode"] for _ in range(2)] == [0, 43101]
    sim.post("/sim/config", {"enforce_consent": True})
    body["touser"] = "bob"
    assert send()["errcode"] == 43101
    assert sim.post("/cgi-bin/message/subscribe/send", body, access_token=sim.token())["errcode"] == 48001
    assert len(sim.get("/sim/messages", api="message/subscribe/send")["messages"]) == 2


def test_menu_validation_and_reading(sim):
    token = sim.token()
    create = lambda menu: sim.post("/cgi-bin/menu/create", menu, access_token=token)["errcode"]  # noqa: E731
    click = {"type": "click", "name": "入会", "key": "JOIN"}
    assert create({"button": [click] * 4}) == 40016
    assert create({"button": [{"name": "服务", "sub_button": [click] * 6}]}) == 40023
    assert create({"button": [{"type": "teleport", "name": "x", "key": "k"}]}) == 40017
    assert create({"button": [{"type": "click", "name": "超过十六个字节的菜单名", "key": "k"}]}) == 40018
    assert create({"button": [{"type": "view", "name": "官网", "url": "ftp://x"}]}) == 40055
    assert sim.get("/cgi-bin/menu/get", access_token=token)["errcode"] == 46003
    menu = {"button": [click, {"name": "服务", "sub_button": [
        {"type": "view", "name": "官网", "url": "https://example.org"},
        {"type": "miniprogram", "name": "小程序", "url": "https://example.org", "appid": MP, "pagepath": "pages/index"},
    ]}]}
    assert create(menu) == 0
    assert sim.get("/cgi-bin/menu/get", access_token=token)["menu"] == menu
    info = sim.get("/cgi-bin/get_current_selfmenu_info", access_token=token)
    assert info["is_menu_open"] == 1 and len(info["selfmenu_info"]["button"][1]["sub_button"]["list"]) == 2
    assert sim.get("/cgi-bin/menu/delete", access_token=token)["errcode"] == 0
    assert sim.get("/cgi-bin/get_current_selfmenu_info", access_token=token) == {"is_menu_open": 0}


def test_qrcodes_and_wxacode(sim):
    token = sim.token()
    permanent = sim.post("/cgi-bin/qrcode/create", {
        "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "org:42"}}}, access_token=token)
    assert "expire_seconds" not in permanent and permanent["url"].startswith("http://weixin.qq.com/q/")
    temporary = sim.post("/cgi-bin/qrcode/create", {"action_name": "QR_SCENE", "expire_seconds": 600,
                                                     "action_info": {"scene": {"scene_id": 7}}}, access_token=token)
    assert temporary["expire_seconds"] == 600
    assert sim.post("/cgi-bin/qrcode/create", {"action_name": "QR_BOGUS"}, access_token=token)["errcode"] == 40052
    image = requests.get(sim.url + "/cgi-bin/showqrcode", params={"ticket": permanent["ticket"]}, timeout=5)
    assert image.headers["Content-Type"] == "image/png" and image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert requests.get(sim.url + "/cgi-bin/showqrcode", params={"ticket": "nope"}, timeout=5).status_code == 404
    assert sim.get(f"/sim/qrcodes/{permanent['ticket']}")["scene"] == "org:42"

    mp_token = sim.token(MP, MP_SECRET)
    code = requests.post(sim.url + "/wxa/getwxacodeunlimit", params={"access_token": mp_token},
                         json={"scene": "a=1&b=2", "page": "pages/join/index", "width": 430}, timeout=5)
    assert code.headers["Content-Type"] == "image/png" and b"scene=a=1&b=2" in code.content
    long_scene = sim.post("/wxa/getwxacodeunlimit", {"scene": "x" * 33}, access_token=mp_token)
    assert long_scene["errcode"] == 40169


def test_msg_sec_check(sim):
    token = sim.token(MP, MP_SECRET)
    check = lambda text: sim.post("/wxa/msg_sec_check", {"openid": "alice", "scene": 2, "version": 2,  # noqa: E731
                                                         "content": text}, access_token=token)
    clean = check("欢迎参加职工运动会")
    assert clean["errcode"] == 0 and clean["result"] == {"suggest": "pass", "label": 100} and clean["trace_id"]
    risky = check("这里可以赌博")
    assert risky["result"] == {"suggest": "risky", "label": 20006}
    assert risky["detail"][-1]["keyword"] == "赌博"
    assert check("诈骗电话")["result"]["label"] == 20008
    assert sim.post("/wxa/msg_sec_check", {"content": "诈骗"}, access_token=token)["errcode"] == 87014


def test_tags_users_and_mass_send(sim):
    token = sim.token()
    call = lambda path, body: sim.post(path, body, access_token=token)  # noqa: E731
    tag = call("/cgi-bin/tags/create", {"tag": {"name": "工会会员"}})["tag"]
    assert tag["id"] >= 100
    assert call("/cgi-bin/tags/create", {"tag": {"name": "工会会员"}})["errcode"] == 45157
    assert call("/cgi-bin/tags/members/batchtagging", {"openid_list": ["oA", "oB"], "tagid": tag["id"]})["errcode"] == 0
    assert call("/cgi-bin/tags/members/batchtagging", {"openid_list": ["oA"], "tagid": 999})["errcode"] == 45159
    assert call("/cgi-bin/tags/getidlist", {"openid": "oA"})["tagid_list"] == [tag["id"]]
    assert sim.get("/cgi-bin/user/info", openid="oB", access_token=token)["tagid_list"] == [tag["id"]]
    assert sim.get("/cgi-bin/tags/get", access_token=token)["tags"] == [{**tag, "count": 2}]
    assert call("/cgi-bin/user/tag/get", {"tagid": tag["id"]})["data"]["openid"] == ["oA", "oB"]
    assert call("/cgi-bin/tags/update", {"tag": {"id": 2, "name": "x"}})["errcode"] == 45058
    assert sim.get("/cgi-bin/user/get", access_token=token)["data"]["openid"] == ["oA", "oB"]
    batch = call("/cgi-bin/user/info/batchget", {"user_list": [{"openid": "oA"}, {"openid": "oC"}]})
    assert [u["openid"] for u in batch["user_info_list"]] == ["oA", "oC"]

    text = {"msgtype": "text", "text": {"content": "群发通知"}}
    assert call("/cgi-bin/message/mass/send", {**text, "touser": ["oA"]})["errcode"] == 40130
    sent = call("/cgi-bin/message/mass/send", {**text, "touser": ["oA", "oC"]})
    assert sent["errcode"] == 0 and sent["msg_id"] and sent["msg_data_id"]
    by_tag = call("/cgi-bin/message/mass/sendall", {**text, "filter": {"is_to_all": False, "tag_id": tag["id"]}})
    assert by_tag["errcode"] == 0
    assert [m["touser"] for m in sim.get("/sim/messages", touser="oB")["messages"]] == [["oA", "oB"]]
    assert call("/cgi-bin/tags/delete", {"tag": {"id": tag["id"]}})["errcode"] == 0
    assert call("/cgi-bin/tags/getidlist", {"openid": "oA"})["tagid_list"] == []


def test_unknown_paths_methods_and_landing_page(sim):
    res = requests.get(sim.url + "/cgi-bin/no/such/api", timeout=5)
    assert res.status_code == 404 and res.json()["errcode"] == 40066
    assert sim.get("/cgi-bin/message/template/send")["errcode"] == 43002
    token = sim.token()
    sim.post("/cgi-bin/message/template/send", template("oLanding", thing1="<b>通知</b>"), access_token=token)
    page = requests.get(sim.url + "/sim/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "微信模拟器" in page.text and "oLanding" in page.text and "/sim/messages" in page.text


def test_concurrent_requests_are_counted_and_recorded_exactly(sim):
    token = sim.token()
    session = requests.Session()

    def worker(n):
        for i in range(25):
            body = {"touser": f"o{n}", "msgtype": "text", "text": {"content": f"{i}"}}
            assert session.post(sim.url + "/cgi-bin/message/custom/send", params={"access_token": token},
                                json=body, timeout=5).json()["errcode"] == 0

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [m["id"] for m in sim.state.messages(api="message/custom/send")]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert sim.get("/sim/stats")["requests"]["message/custom/send"] == 200
