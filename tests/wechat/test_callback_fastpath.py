"""The callback's fast paths: inline bots, the conversation read with the claim, no empty commits."""

from __future__ import annotations

import threading

import pytest

from handlers.wechat.router import BotContext, conversation_key, router
from server.wechat.simulator.push import text_push

from .conftest import reply_text


@pytest.fixture
def temporary_bots():
    added = []

    def register(decorator):
        def wrap(func):
            decorator(func)
            added.append(func)
            return func

        return wrap

    yield register
    router.rules[:] = [r for r in router.rules if r.func not in added]
    for func in added:
        router.bots.pop(func.__name__, None)
        router.conversations = {k: v for k, v in router.conversations.items() if v is not func}


def test_an_inline_bot_runs_on_the_request_thread_and_others_on_the_pool(pusher, temporary_bots):
    threads = {}

    @temporary_bots(router.keyword("内联测试", inline=True))
    def inline_probe_bot(ctx):
        threads["inline"] = threading.get_ident()
        return "内联回答"

    @temporary_bots(router.keyword("池测试"))
    def pooled_probe_bot(ctx):
        threads["pool"] = threading.get_ident()
        return "池回答"

    assert pusher.say("oFast1", "内联测试", "safe") == "内联回答"
    assert pusher.say("oFast1", "池测试", "safe") == "池回答"
    assert threads["inline"] == threading.get_ident()  # the test client runs the request here
    assert threads["pool"] != threading.get_ident()


def test_a_failing_inline_bot_answers_busy_and_commits_nothing(pusher, temporary_bots, db_session):
    from sqlalchemy import func, select

    from server.models import KeywordReply

    @temporary_bots(router.keyword("内联失败", inline=True))
    def failing_inline_bot(ctx):
        db_session.add(KeywordReply(keyword="不应保存", match="exact", reply="x", priority=1, active=True))
        db_session.flush()
        raise RuntimeError("boom")

    assert "繁忙" in pusher.say("oFast2", "内联失败")
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(KeywordReply).where(KeywordReply.keyword == "不应保存")) == 0


def test_slow_and_inline_exclude_each_other():
    with pytest.raises(ValueError):
        router.keyword("两者", slow=True, inline=True)


def test_a_pending_conversation_is_read_with_the_claim(pusher, redis, temporary_bots, monkeypatch):
    seen = {}

    @temporary_bots(router.conversation("fastpath_step"))
    def fastpath_step_bot(ctx, state):
        seen["state"] = state
        ctx.end_conversation()
        return "会话收到：" + ctx.content

    redis.set(conversation_key("oFast3"), '{"step": "fastpath_step", "data": {"n": 1}}', ex=60)
    gets = []
    original = BotContext.conversation_state

    def counting(self):
        gets.append(self._conversation_raw)
        return original(self)

    monkeypatch.setattr(BotContext, "conversation_state", counting)
    assert pusher.say("oFast3", "你好") == "会话收到：你好"
    assert seen["state"] == {"n": 1}
    assert gets and gets[0] is not None and b"fastpath_step" in gets[0]  # prefetched, not read again
    assert redis.get(conversation_key("oFast3")) is None
    assert "补贴" in pusher.say("oFast3", "帮助")  # the conversation ended: keywords again


def test_a_retried_text_push_still_gets_the_first_answer(pusher):
    xml = text_push("oFast4", "帮助", msg_id=4242)
    first, second = pusher.post(xml, "safe"), pusher.post(xml, "safe")
    assert reply_text(first.plain) == reply_text(second.plain) and "补贴" in reply_text(first.plain)


def test_a_request_without_database_work_opens_no_session(client, monkeypatch):
    from server.extensions import db

    opened = []
    monkeypatch.setattr(type(db.registry), "__call__", lambda self, *a, _orig=type(db.registry).__call__, **k: opened.append(1) or _orig(self, *a, **k))
    db.remove()
    assert client.get("/healthz").status_code == 200
    assert opened == []


@pytest.mark.parametrize("seed", range(3))
def test_the_query_string_reads_as_parse_qsl_reads_it(seed):
    """The callback splits WeChat's plain query strings itself; whatever the string, the first value of each
    name is what ``urllib.parse.parse_qsl`` gives (escapes, "+", blanks and repeats included)."""
    import random
    from urllib.parse import parse_qsl

    from handlers.wechat.callback import _query

    rng = random.Random(seed)
    alphabet = "ab1_=&%2B+"
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        expected: dict = {}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            expected.setdefault(name, value)
        assert _query({"QUERY_STRING": raw}) == expected, raw
    assert _query({"QUERY_STRING": "signature=ab12&timestamp=1700000000&nonce=9&openid=o_x-Y&encrypt_type=aes"}) == {
        "signature": "ab12", "timestamp": "1700000000", "nonce": "9", "openid": "o_x-Y", "encrypt_type": "aes"}
