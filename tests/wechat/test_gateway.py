"""The WeChat gateway: shared Redis token, one refresh-and-retry, error kinds, base URL rewriting."""

from __future__ import annotations

import threading

import pytest
import requests
from requests.adapters import BaseAdapter

from server.wechat import gateway
from server.wechat.errors import WeChatAPIError, classify
from server.wechat.simulator.identity import identities
from tests.conftest import TEST_SECRETS

OA, OA_SECRET = TEST_SECRETS["WECHAT_OA_APPID"], TEST_SECRETS["WECHAT_OA_SECRET"]
MP = TEST_SECRETS["WECHAT_MP_APPID"]


@pytest.fixture
def state(simulator):
    return simulator.app.extensions["simulator"]


def run_in_threads(app, count, work):
    """Run ``work(n)`` in ``count`` threads, each with an app context, released together."""
    barrier = threading.Barrier(count)

    def worker(n):
        with app.app_context():
            barrier.wait()
            work(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def new_client(redis, simulator, secret=OA_SECRET, base=None, timeout=5):
    return gateway.GatewayClient(OA, secret, api_base=base or simulator.url, redis=redis, timeout=timeout)


def test_token_is_cached_in_redis_and_shared_by_clients(redis, simulator, state):
    first, second = new_client(redis, simulator), new_client(redis, simulator)
    assert first.user.get("oA")["subscribe"] == 1
    assert second.user.get("oB")["subscribe"] == 1
    assert gateway.get_user_info("oC")["openid"] == "oC"
    assert state.token_count(OA) == 1
    key = f"unionhub:wechat:token:{OA}"
    assert redis.get(key).decode() == first.tokens.cached()
    assert 0 < redis.ttl(key) <= 7200 - 300
    assert state.stats()["requests"] == {"stable_token": 1, "user/info": 3}


def test_expired_token_is_refreshed_once_and_the_call_succeeds(redis, simulator, state):
    client = gateway.oa_client()
    client.user.get("oA")
    old = client.tokens.cached()
    state.expire_tokens()
    assert client.user.get("oA")["subscribe"] == 1
    assert state.token_count(OA) == 2 and client.tokens.cached() != old
    assert state.stats()["requests"]["user/info"] == 3  # ok, 42001, retried ok


def test_a_foreign_cached_token_is_replaced(redis, state):
    redis.set(f"unionhub:wechat:token:{OA}", "not-a-real-token")
    assert gateway.get_user_info("oA")["subscribe"] == 1
    assert state.token_count(OA) == 1


def test_concurrent_refresh_fetches_one_token(app, state):
    results = []
    run_in_threads(app, 8, lambda n: results.append(gateway.get_user_info(f"o{n}")["openid"]))
    assert sorted(results) == [f"o{n}" for n in range(8)]
    assert state.token_count(OA) == 1
    assert state.stats()["requests"]["stable_token"] == 1


def test_concurrent_refresh_after_expiry_fetches_one_token(app, state):
    gateway.get_user_info("warm-up")
    state.expire_tokens()
    outcomes = []
    run_in_threads(app, 8, lambda n: outcomes.append(gateway.get_user_info(f"o{n}")["subscribe"]))
    assert outcomes == [1] * 8
    assert state.token_count(OA) == 2


def test_token_errors_are_retried_only_once(state):
    state.add_fault("user/info", errcode=40001, count=2)
    with pytest.raises(WeChatAPIError) as caught:
        gateway.get_user_info("oA")
    assert caught.value.errcode == 40001 and caught.value.kind == "token"
    assert state.stats()["requests"]["user/info"] == 2


@pytest.mark.parametrize(
    ("fault", "errcode", "kind"),
    [
        ({"errcode": -1}, -1, "transient"),
        ({"errcode": 45009}, 45009, "transient"),
        ({"errcode": 45011}, 45011, "transient"),
        ({"errcode": 43004}, 43004, "permanent"),
        ({"errcode": 47003}, 47003, "permanent"),
        ({"http_status": 502}, None, "transient"),
    ],
)
def test_errors_carry_their_kind(state, fault, errcode, kind):
    state.add_fault("message/custom/send", **fault)
    with pytest.raises(WeChatAPIError) as caught:
        gateway.send_custom_text("oA", "您好")
    assert (caught.value.errcode, caught.value.kind) == (errcode, kind)
    assert caught.value.retryable == (kind != "permanent")
    assert gateway.send_custom_text("oA", "您好")["errcode"] == 0  # the fault is used up


def test_real_rule_violations_are_permanent(state):
    state.configure(enforce_consent=True)
    with pytest.raises(WeChatAPIError) as refused:
        gateway.send_mp_subscribe("alice", "tpl-1", {"thing1": "报名成功"})
    assert (refused.value.errcode, refused.value.kind) == (43101, "permanent")
    with pytest.raises(WeChatAPIError) as too_long:
        gateway.send_template("oA", "tpl-1", {"thing1": "超" * 21})
    assert (too_long.value.errcode, too_long.value.kind) == (47003, "permanent")
    assert state.messages() == []


def test_timeouts_and_connection_errors_are_transient(redis, simulator, state):
    state.add_fault("user/info", latency_ms=800)
    slow = new_client(redis, simulator, timeout=0.3)
    with pytest.raises(WeChatAPIError) as timed_out:
        slow.user.get("oA")
    assert timed_out.value.errcode is None and timed_out.value.kind == "transient"
    assert "Timeout" in timed_out.value.errmsg
    nowhere = new_client(redis, simulator, base="http://127.0.0.1:9")  # discard port: nothing listens
    redis.delete(f"unionhub:wechat:token:{OA}")
    with pytest.raises(WeChatAPIError) as refused:
        nowhere.user.get("oA")
    assert refused.value.kind == "transient" and refused.value.errcode is None


def test_bad_secret_is_a_permanent_error(redis, simulator, state):
    with pytest.raises(WeChatAPIError) as caught:
        new_client(redis, simulator, secret="wrong").user.get("oA")
    assert (caught.value.errcode, caught.value.kind) == (40125, "permanent")
    assert state.token_count(OA) == 0


def test_classify():
    assert [classify(c) for c in (40001, 40014, 42001)] == ["token"] * 3
    assert [classify(c) for c in (-1, 45009, 45011, 45047, None)] == ["transient"] * 5
    assert [classify(c) for c in (43004, 43101, 47003, 40003, 40037, 43019, 48001, 12345)] == ["permanent"] * 8


class _Forbidden(BaseAdapter):
    """Refuses (and remembers) any request to the real WeChat host."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def send(self, request, **kwargs):
        self.seen.append(request.url)
        raise requests.ConnectionError("must not reach api.weixin.qq.com")

    def close(self):
        pass


def test_every_call_goes_to_the_configured_base(app, state):
    forbidden = _Forbidden()
    session = gateway.http_session()
    session.mount("https://api.weixin.qq.com", forbidden)
    try:
        who = identities("carol")
        login = gateway.jscode2session("sim:carol")
        assert (login["openid"], login["unionid"]) == ("carol", who["unionid"])
        assert state.token_count(MP) == 0  # jscode2session needs no access token
        sent = gateway.send_template(who["oa_openid"], "tpl-9", {"thing1": "会员日", "first": {"value": "旧字段"}},
                                     url="https://example.org", miniprogram={"appid": MP, "pagepath": "pages/a"})
        recorded = state.messages(touser=who["oa_openid"])
        assert [m["id"] for m in recorded] == [sent["msgid"]]
        assert recorded[0]["payload"]["data"]["thing1"] == {"value": "会员日"}
        assert gateway.get_user_info(who["oa_openid"])["unionid"] == who["unionid"]
        assert gateway.send_mp_subscribe("carol", "tpl-2", {"thing1": "审核通过"}, page="pages/me")["msgid"]
        check = gateway.msg_sec_check("carol", "一起去赌博")
        assert check["result"]["suggest"] == "risky"
        qr = gateway.create_qrcode("org:7")
        assert "expire_seconds" not in qr and state.qrcodes[qr["ticket"]]["scene"] == "org:7"
        assert gateway.create_qrcode("event:1", expire_seconds=3600)["expire_seconds"] == 3600
        assert gateway.create_menu({"button": [{"type": "click", "name": "入会", "key": "JOIN"}]})["errcode"] == 0
        assert gateway.get_wxacode_unlimited("id=1", page="pages/a").startswith(b"\x89PNG")
        assert gateway.wecom_webhook_send("bot", {"msgtype": "text", "text": {"content": "告警"}})["errcode"] == 0
    finally:
        session.adapters.pop("https://api.weixin.qq.com", None)
    assert forbidden.seen == []
    requests_seen = state.stats()["requests"]
    assert requests_seen["stable_token"] == 2  # one per app
    assert requests_seen["sns/jscode2session"] == 1 and requests_seen["webhook/send"] == 1
    assert gateway.oa_client().rewrite("https://api.weixin.qq.com/cgi-bin/menu/get") == (
        app.extensions["unionhub"]["config"].WECHAT_API_BASE + "/cgi-bin/menu/get")


def test_webhook_errors(state):
    text = {"msgtype": "text", "text": {"content": "提醒"}}
    for _ in range(20):
        gateway.wecom_webhook_send("busy-bot", text)
    with pytest.raises(WeChatAPIError) as limited:
        gateway.wecom_webhook_send("busy-bot", text)
    assert (limited.value.errcode, limited.value.kind) == (45009, "transient")
    state.set_webhook_failure("dead-bot", 93000)
    with pytest.raises(WeChatAPIError) as dead:
        gateway.wecom_webhook_send("dead-bot", text)
    assert dead.value.kind == "permanent"


def test_login_code_errors(state):
    gateway.jscode2session("sim:dave")
    with pytest.raises(WeChatAPIError) as reused:
        gateway.jscode2session("sim:dave")
    assert (reused.value.errcode, reused.value.kind) == (40163, "permanent")
