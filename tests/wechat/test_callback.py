"""/wechat: verification, signatures, modes, hostile input, exactly-once and the time budget."""

import time
from pathlib import Path

import pytest
import xmltodict

from server.wechat.simulator.push import event_push, signature, text_push

from ..conftest import TEST_SECRETS
from .conftest import reply_text

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "shared" / "wechat-samples").glob("*.xml"))
TOKEN = TEST_SECRETS["WECHAT_OA_TOKEN"]


def test_get_verification(client):
    ts, nonce = str(int(time.time())), "abc"
    ok = client.get("/wechat", query_string={"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "e42"})
    assert ok.status_code == 200 and ok.data == b"e42"
    bad = client.get("/wechat", query_string={"signature": "0" * 40, "timestamp": ts, "nonce": nonce, "echostr": "e42"})
    assert bad.status_code == 403
    old = str(int(time.time()) - 3600)
    stale = client.get("/wechat", query_string={"signature": signature(TOKEN, old, nonce), "timestamp": old, "nonce": nonce, "echostr": "x"})
    assert stale.status_code == 403


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_text_in_every_mode(pusher, mode):
    response = pusher.post(text_push("oUser1", "帮助"), mode)
    assert response.status_code == 200
    if mode != "plain":
        assert b"<Encrypt>" in response.data and "帮助".encode() not in response.data
    reply = xmltodict.parse(response.plain)["xml"]
    assert reply["MsgType"] == "text" and reply["ToUserName"] == "oUser1"
    assert "补贴" in reply["Content"]


def test_bad_signature_is_refused_and_nothing_runs(pusher, redis):
    response = pusher.post(text_push("oUser1", "帮助"), signature="0" * 40)
    assert response.status_code == 403
    response = pusher.post(text_push("oUser1", "帮助"), "safe", msg_signature="0" * 40)
    assert response.status_code == 403
    assert not redis.keys("unionhub:wx:push:*")


def test_stale_timestamp_is_refused(pusher):
    from server.wechat.simulator.push import PushSigner

    signer: PushSigner = pusher.signer
    push = signer.sign(text_push("oUser1", "帮助"), timestamp=int(time.time()) - 301)
    response = pusher.client.post("/wechat", query_string=push.query, data=push.body)
    assert response.status_code == 403


def test_oversized_body(pusher):
    response = pusher.post(text_push("oUser1", "长" * 40000))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<xml><FromUserName>a</FromUserName>",
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName><FromUserName>&x;</FromUserName><MsgType>text</MsgType><Content>c</Content><MsgId>1</MsgId></xml>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><FromUserName>&lol3;</FromUserName><MsgType>text</MsgType></xml>',
        b"<xml><ToUserName>a</ToUserName></xml>",
        b"<notxml><a>1</a></notxml>",
    ],
)
def test_hostile_or_malformed_xml_is_a_400(client, body):
    ts, nonce = str(int(time.time())), "n1"
    response = client.post("/wechat", query_string={"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}, data=body)
    assert response.status_code == 400
    assert b"passwd" not in response.data and b"root:" not in response.data


def test_broken_ciphertext_is_a_400(client):
    ts, nonce = str(int(time.time())), "n1"
    cipher = "bm90IGEgY2lwaGVydGV4dA=="
    response = client.post(
        "/wechat",
        query_string={"timestamp": ts, "nonce": nonce, "signature": signature(TOKEN, ts, nonce), "encrypt_type": "aes", "msg_signature": signature(TOKEN, ts, nonce, cipher)},
        data=f"<xml><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>",
    )
    assert response.status_code == 400


def test_a_retry_gets_the_same_answer_and_the_bot_runs_once(pusher, monkeypatch):
    from handlers.wechat.bots import help as help_bots

    calls = []
    original = help_bots.CAPABILITIES

    def counting_help(ctx):
        calls.append(1)
        return original + f"#{len(calls)}"

    from handlers.wechat.router import router

    for rule in router.rules:
        if rule.func is help_bots.help_bot:
            monkeypatch.setattr(rule, "func", counting_help)
    xml = text_push("oRetry", "帮助", msg_id=777)
    first = pusher.post(xml, "safe")
    second = pusher.post(xml, "safe")
    third = pusher.post(xml)
    assert len(calls) == 1
    assert reply_text(first.plain) == reply_text(second.plain) == reply_text(third.plain)
    assert reply_text(first.plain).endswith("#1")


def test_pushes_are_stored_with_their_bot_and_timing(pusher, run_jobs, db_session):
    from sqlalchemy import select

    from server.models import WechatPush

    pusher.say("oLog", "帮助")
    pusher.post(event_push("oLog", "CLICK", "MENU_HELP"), "safe")
    pusher.post(text_push("oLog", "帮助", msg_id=99))
    pusher.post(text_push("oLog", "帮助", msg_id=99))  # a retry is not stored twice
    run_jobs()
    rows = db_session.scalars(select(WechatPush).order_by(WechatPush.id)).all()
    assert len(rows) == 3
    assert {r.bot for r in rows} == {"help_bot"}
    assert all(r.duration_ms is not None and r.duration_ms >= 0 for r in rows)
    assert rows[1].encrypted and rows[1].event == "CLICK" and rows[1].payload["EventKey"] == "MENU_HELP"


@pytest.fixture(scope="module")
def deferred_claims(app):
    """Production's claims: each store waits to travel with the next claim (5 s here, so always with it)."""
    from handlers.wechat.claims import PushClaims
    from handlers.wechat.pushlog import queue_drain

    redis = app.extensions["unionhub"]["redis"]
    return PushClaims(redis, defer=5.0, on_drain_flag=lambda: queue_drain(redis))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("mode", ["plain", "safe"])
@pytest.mark.parametrize("store", ["at_once", "deferred"])
def test_every_platform_sample(pusher, sample, mode, store, app, deferred_claims, monkeypatch):
    """Each of WeChat's own sample pushes gets 200 with a valid reply or success, and a retry runs nothing
    (with the answer stored at once, or queued to go with the retry's claim)."""
    from handlers.wechat import callback

    if store == "deferred":
        monkeypatch.setitem(app.extensions["unionhub"], "wx_claims", deferred_claims)
    xml = sample.read_text()
    runs = []
    original = callback._run

    def counting(route, message, *rest):
        runs.append(route.name)
        return original(route, message, *rest)

    monkeypatch.setattr(callback, "_run", counting)
    first = pusher.post(xml, mode)
    assert first.status_code == 200, first.data
    second = pusher.post(xml, mode)
    assert second.status_code == 200
    assert len(runs) == 1, runs
    for response in (first, second):
        if response.plain != "success":
            reply = xmltodict.parse(response.plain)["xml"]
            assert reply["MsgType"] in ("text", "news")
    assert reply_text(first.plain) == reply_text(second.plain)


def test_a_slow_bot_is_answered_within_a_second_and_delivered_later(pusher, simulator, run_jobs, slow_subsidy_rules):
    """Past the time budget the callback answers at once; a job sends the answer as a customer-service message."""
    slow_subsidy_rules("慢速回答：补助政策", seconds=2)
    started = time.perf_counter()
    answer = pusher.say("oSlow", "补贴", mode="safe")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert "稍后" in answer
    deadline = time.monotonic() + 5
    sim = simulator.app.extensions["simulator"]
    while time.monotonic() < deadline and not sim.messages(touser="oSlow"):
        run_jobs()
        time.sleep(0.1)
    [delivered] = sim.messages(touser="oSlow")
    assert delivered["api"].endswith("custom/send")
    assert delivered["payload"]["text"]["content"] == "慢速回答：补助政策"


def test_a_late_answer_spends_the_allowance_its_push_granted(pusher, simulator, run_jobs, slow_subsidy_rules):
    """The late answer takes one message of the 20 the worker's message granted, before the push log is
    drained; the drain then applies the same grant again without handing the spent message back."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Person, WechatPush

    db.add(Person(oa_openid="oLateCS", oa_subscribed=True))
    db.commit()
    slow_subsidy_rules("慢速回答")
    assert "稍后" in pusher.say("oLateCS", "补贴", mode="safe")
    from jobs import queues
    from jobs.wechat import deliver_reply

    deadline = time.monotonic() + 5
    queue = queues.get_queue(queues.HIGH)
    while time.monotonic() < deadline and not any(j.func is deliver_reply for j in queue.jobs):
        time.sleep(0.05)
    [late] = [j for j in queue.jobs if j.func is deliver_reply]
    late.perform()  # before the drain job: the push is not in the database yet
    db.remove()
    assert db.scalar(select(WechatPush).where(WechatPush.openid == "oLateCS")) is None
    person = db.scalars(select(Person).where(Person.oa_openid == "oLateCS")).one()
    assert person.oa_cs_left == 19
    [delivered] = simulator.app.extensions["simulator"].messages(touser="oLateCS")
    assert delivered["payload"]["text"]["content"] == "慢速回答"
    late.delete()
    run_jobs()  # the drain: stores the push and applies its grant once more
    db.remove()
    person = db.scalars(select(Person).where(Person.oa_openid == "oLateCS")).one()
    assert db.scalar(select(WechatPush).where(WechatPush.openid == "oLateCS")) is not None
    assert person.oa_cs_left == 19


def test_a_late_answer_with_no_allowance_left_is_not_sent(app, simulator):
    from datetime import datetime, timedelta, timezone

    from server.extensions import db
    from server.models import Person

    pushed = datetime.now(timezone.utc) - timedelta(seconds=30)
    # the click granted 3 messages within a minute, all spent already
    db.add(Person(oa_openid="oSpent", oa_subscribed=True, oa_cs_until=pushed + timedelta(minutes=1), oa_cs_left=0,
                  oa_last_interaction_at=pushed))
    db.commit()
    from jobs.wechat import deliver_reply

    push = {"msg_type": "event", "event": "CLICK", "received_at": pushed.timestamp()}
    with app.app_context():
        assert deliver_reply("oSpent", {"type": "text", "content": "晚到的回答"}, push) is None
    assert not simulator.app.extensions["simulator"].messages(touser="oSpent")


def test_slow_bots_run_as_jobs(pusher, simulator, run_jobs):
    from handlers.wechat.router import router

    @router.keyword("慢查询", slow=True)
    def slow_query_bot(ctx):
        return "查询结果：共3条"

    try:
        assert "稍后" in pusher.say("oJob", "慢查询")
        run_jobs()
        [msg] = simulator.app.extensions["simulator"].messages(touser="oJob")
        assert msg["payload"]["text"]["content"] == "查询结果：共3条"
    finally:
        router.rules[:] = [r for r in router.rules if r.func is not slow_query_bot]


def test_the_platform_samples_are_all_there():
    assert len(SAMPLES) == 51, "../shared/wechat-samples/ must sit beside the checkout"


def test_the_callback_answers_like_a_view_outside_flasks_dispatch(pusher, client):
    """POST /wechat is served ahead of Flask's dispatch (CallbackEndpoint); its answers keep the app's contract."""
    from werkzeug.test import EnvironBuilder

    response = pusher.post(text_push("oUser1", "帮助"), "safe")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert len(response.headers["X-Request-ID"]) == 32
    assert int(response.headers["Content-Length"]) == len(response.data)
    push = pusher.signer.sign(event_push("oUser1", "VIEW", "https://example.com"), "plain")
    given = client.post("/wechat", query_string=push.query, data=push.body, headers={"X-Request-ID": "proxy-id-1"})
    assert given.status_code == 200 and given.data == b"success" and given.mimetype == "text/plain"
    assert given.headers["X-Request-ID"] == "proxy-id-1"
    odd = client.post("/wechat", query_string=push.query, data=push.body, headers={"X-Request-ID": "a\x01b"})
    assert odd.status_code == 200 and len(odd.headers["X-Request-ID"]) == 32  # not echoed: a new one
    for length in ("abc", "-5"):  # a Content-Length no server should pass on, called directly
        environ = EnvironBuilder(path="/wechat", method="POST", data=b"<xml/>").get_environ()
        environ["CONTENT_LENGTH"] = length
        status = []
        client.application(environ, lambda s, h, exc=None: status.append(s))
        assert status == ["400 BAD REQUEST"]
    # Other methods and paths still go through Flask.
    assert client.put("/wechat").status_code == 405
    assert client.post("/wechat/").status_code == 404


def test_the_callback_answers_503_when_redis_is_down(pusher, app, monkeypatch):
    """A claim that cannot reach Redis is WeChat's cue to retry: 503 service_busy, the error shape, never a 500."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from handlers.wechat import claims

    def unreachable(self, *args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(claims.PushClaims, "claim", unreachable)
    response = pusher.post(text_push("oUser1", "帮助"), "safe")
    assert response.status_code == 503
    assert response.json["code"] == "service_busy" and response.headers["Retry-After"]
    assert response.headers["X-Request-ID"]


def test_an_unexpected_failure_is_a_500_in_the_error_shape(pusher, monkeypatch):
    from handlers.wechat import callback

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(callback, "handle_push", broken)
    response = pusher.post(text_push("oUser1", "帮助"))
    assert response.status_code == 500 and response.json["code"]


def test_a_drainer_that_lost_its_lock_trims_nothing(pusher, redis, db_session, monkeypatch):
    """A push-log drain whose lock expired mid-batch (and was taken over) leaves the records to its successor:
    nothing is trimmed that nobody stored, nobody's lock is deleted, and nothing is stored twice."""
    from sqlalchemy import func, select

    import jobs.wechat as wechat_jobs
    from handlers.wechat.pushlog import PUSHLOG_KEY
    from server.models import WechatPush

    for n in range(3):
        pusher.post(text_push("oDrain", "帮助", msg_id=5000 + n))
    assert redis.llen(PUSHLOG_KEY) == 3
    remember = wechat_jobs._remember_interactions

    def stalled(records):
        remember(records)
        redis.set(wechat_jobs.DRAIN_LOCK, "a-successor")  # the lock expired and another drainer took it

    monkeypatch.setattr(wechat_jobs, "_remember_interactions", stalled)
    assert wechat_jobs.store_pushes() == 0
    assert redis.llen(PUSHLOG_KEY) == 3  # not trimmed: the successor has them
    assert redis.get(wechat_jobs.DRAIN_LOCK) == b"a-successor"  # and its lock is left alone
    assert db_session.scalar(select(func.count()).select_from(WechatPush)) == 3  # stored, committed

    monkeypatch.setattr(wechat_jobs, "_remember_interactions", remember)
    redis.delete(wechat_jobs.DRAIN_LOCK)  # the successor, in turn
    assert wechat_jobs.store_pushes() == 3
    assert redis.llen(PUSHLOG_KEY) == 0 and not redis.exists(wechat_jobs.DRAIN_LOCK)
    assert db_session.scalar(select(func.count()).select_from(WechatPush)) == 3
