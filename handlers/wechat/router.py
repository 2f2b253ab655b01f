"""The bot router: which bot answers a push.

A bot is one small function taking a :class:`BotContext` and returning a
reply: a string (text), a list of article dicts (news), a wechatpy reply,
or None (answer ``success``, no message).  Bots register themselves with
decorators on the module-level :data:`router`:

    @router.keyword("帮助", "help")
    def help_bot(ctx): return "..."

Rules are tried by priority (lower first), then by registration order.
A bot registered ``slow=True`` always runs as a job; one registered
``inline=True`` (no database, network or Redis work: it returns a constant
or formats the push) runs on the request's own thread, skipping the hand-off
to the pool that enforces the time budget; every other bot runs on the pool.
Kinds: message type, event, menu key (CLICK), QR scene prefix (subscribe
through a parameter QR code, SCAN, scancode_*), keyword (exact, prefix or
regular expression).  A pending conversation (see ``BotContext.ask``)
takes the next text message before any keyword.  ``fallback`` answers
whatever nothing else claims.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import select

from server.wechat.staff_regex import compile_pattern
from server.wechat.staff_regex import error as staff_regex_error

CONVERSATION_TTL = 300
CANCEL_WORDS = {"取消", "退出", "cancel"}
#: ``BotContext(conversation=...)`` default: the conversation state has not been read yet.
NOT_FETCHED: Any = object()


def conversation_key(openid: str) -> str:
    """The Redis key of a follower's pending conversation."""
    return f"unionhub:wx:conv:{openid}"


@dataclass
class Rule:
    kind: str  # message | event | menu | scene | keyword
    pattern: Any
    func: Callable
    priority: int = 100
    match: str = "exact"  # for keywords
    slow: bool = False  # always run as a job, answer by customer-service message
    order: int = 0
    inline: bool = False  # no I/O: run on the request's thread, not the budgeted pool

    @property
    def name(self) -> str:
        return self.func.__name__

    def matches_text(self, text: str, lowered: str | None = None) -> bool:
        """Whether a text message matches this keyword rule (``lowered``: ``text.lower()``, if known)."""
        if self.match == "regex":
            return bool(self.pattern.search(text))
        lowered = text.lower() if lowered is None else lowered
        if self.match == "exact":
            return lowered == self.pattern.lower()
        return lowered.startswith(self.pattern.lower())


@dataclass
class Route:
    name: str
    func: Callable
    slow: bool = False
    kwargs: dict = field(default_factory=dict)
    inline: bool = False


class Router:
    def __init__(self):
        self.rules: list[Rule] = []
        self.conversations: dict[str, Callable] = {}
        self.bots: dict[str, Rule | Callable] = {}
        self._fallback: Callable | None = None

    def _add(self, kind, patterns, priority=100, match="exact", slow=False, inline=False):
        if slow and inline:
            raise ValueError("a bot is either slow (run as a job) or inline, not both")

        def decorator(func):
            for pattern in patterns:
                if kind == "keyword" and match == "regex":
                    pattern = re.compile(pattern)
                rule = Rule(kind, pattern, func, priority, match, slow, len(self.rules), inline)
                self.rules.append(rule)
            self.bots[func.__name__] = func
            self.rules.sort(key=lambda r: (r.priority, r.order))
            return func

        return decorator

    def message(self, *msg_types, priority=100, slow=False, inline=False):
        return self._add("message", [t.lower() for t in msg_types], priority, slow=slow, inline=inline)

    def event(self, *events, priority=100, slow=False, inline=False):
        return self._add("event", [e.lower() for e in events], priority, slow=slow, inline=inline)

    def menu(self, *keys, priority=100, slow=False, inline=False):
        return self._add("menu", keys, priority, slow=slow, inline=inline)

    def scene(self, *prefixes, priority=100, slow=False, inline=False):
        return self._add("scene", prefixes, priority, slow=slow, inline=inline)

    def keyword(self, *words, match="exact", priority=100, slow=False, inline=False):
        if match not in ("exact", "prefix", "regex"):
            raise ValueError("match must be exact, prefix or regex")
        return self._add("keyword", words, priority, match, slow, inline)

    def conversation(self, name: str):
        def decorator(func):
            self.conversations[name] = func
            self.bots[func.__name__] = func
            return func

        return decorator

    def fallback(self, func):
        self._fallback = func
        self.bots[func.__name__] = func
        return func

    # -- resolution ------------------------------------------------------------------------

    def _first(self, kind: str, test) -> Route | None:
        for rule in self.rules:
            if rule.kind == kind and test(rule):
                if getattr(rule.func, "shared_answer", False):
                    return _shared_route(rule)
                return Route(rule.name, rule.func, rule.slow, inline=rule.inline)
        return None

    def resolve(self, ctx: "BotContext") -> Route:
        if ctx.msg_type == "text":
            text = ctx.content.strip()
            pending = ctx.conversation_state()
            if pending and pending.get("step") in self.conversations:
                if text.lower() in CANCEL_WORDS:
                    ctx.end_conversation()
                    return Route("conversation_cancelled", lambda c: "已取消。如需帮助，请回复“帮助”。", inline=True)
                func = self.conversations[pending["step"]]
                return Route(func.__name__, func, kwargs={"state": pending.get("data") or {}})
            db_reply = _keyword_reply_from_db(text)
            lowered = text.lower()
            code_route = self._first("keyword", lambda r: r.matches_text(text, lowered))
            if db_reply is not None and (code_route is None or db_reply[0] <= _priority_of(self, code_route)):
                return Route("keyword_reply", lambda c, _t=db_reply[1]: _t, inline=True)
            if code_route:
                return code_route
        elif ctx.msg_type == "event":
            scene = ctx.scene
            if scene is not None:
                route = self._first("scene", lambda r: scene.startswith(r.pattern))
                if route:
                    route.kwargs["scene"] = scene
                    if ctx.event in ("subscribe",):
                        route.kwargs["via_subscribe"] = True
                    return route
            if ctx.event == "click":
                route = self._first("menu", lambda r: r.pattern == ctx.event_key)
                if route:
                    return route
            route = self._first("event", lambda r: r.pattern == ctx.event)
            if route:
                return route
        route = self._first("message", lambda r: r.pattern in (ctx.msg_type, "*"))
        if route:
            return route
        assert self._fallback is not None, "a fallback bot must be registered"
        return Route(self._fallback.__name__, self._fallback, inline=True)


def _priority_of(router: Router, route: Route) -> int:
    return min(r.priority for r in router.rules if r.func is route.func)


def shared_answer(func):
    """Mark a bot whose answer is the same for every sender (a listing of open programmes, say).

    Its answer is kept in the process for ``WECHAT_SHARED_ANSWER_SECONDS`` and served
    on the request's thread, so a rush of the same keyword costs one database read per
    process and period instead of one per push.
    """
    func.shared_answer = True
    return func


_shared_answers: dict[str, tuple[float, Any]] = {}


def _shared_route(rule: Rule) -> Route:
    import time

    from flask import current_app

    ttl = current_app.extensions["unionhub"]["config"].WECHAT_SHARED_ANSWER_SECONDS
    hit = _shared_answers.get(rule.name)
    if ttl > 0 and hit is not None and time.monotonic() - hit[0] < ttl:
        return Route(rule.name, lambda c, _v=hit[1]: _v, inline=True)

    def answer_and_keep(ctx, _func=rule.func, _name=rule.name, **kwargs):
        value = _func(ctx, **kwargs)
        _shared_answers[_name] = (time.monotonic(), value)
        return value

    return Route(rule.name, answer_and_keep, rule.slow, inline=rule.inline)


def forget_shared_answers() -> None:
    _shared_answers.clear()


_keyword_cache: dict[str, Any] = {"at": 0.0, "rows": []}
KEYWORD_CACHE_SECONDS = 30


def invalidate_keyword_cache() -> None:
    _keyword_cache["at"] = 0.0


def _keyword_reply_from_db(text: str) -> tuple[int, str] | None:
    """Staff-maintained keyword replies, cached for a few seconds per process."""
    import time

    from server.extensions import db
    from server.models import KeywordReply

    now = time.monotonic()
    if now - _keyword_cache["at"] > KEYWORD_CACHE_SECONDS:
        rows = db.execute(
            select(KeywordReply.keyword, KeywordReply.match, KeywordReply.reply, KeywordReply.priority)
            .where(KeywordReply.active.is_(True))
            .order_by(KeywordReply.priority, KeywordReply.id)
        ).all()
        compiled = []
        for keyword, match, reply, priority in rows:
            try:  # staff patterns run on RE2: linear time whatever the pattern (server/wechat/staff_regex.py)
                pattern = compile_pattern(keyword) if match == "regex" else keyword.lower()
            except staff_regex_error:
                continue  # a broken staff regex must not break the account
            compiled.append((match, pattern, reply, priority))
        _keyword_cache.update(at=now, rows=compiled)
    lowered = text.lower()
    for match, pattern, reply, priority in _keyword_cache["rows"]:
        if (
            (match == "exact" and lowered == pattern)
            or (match == "prefix" and lowered.startswith(pattern))
            or (match == "regex" and pattern.search(text))
        ):
            return priority, reply
    return None


class BotContext:
    """What a bot sees: the push, the sender, their conversation state, and reply helpers."""

    def __init__(self, message: dict, redis, config, conversation: Any = NOT_FETCHED):
        self.message = message
        self.redis = redis
        self.config = config
        self.openid: str = message.get("FromUserName", "")
        self.msg_type: str = (message.get("MsgType") or "").lower()
        self.event: str = (message.get("Event") or "").lower()
        self.event_key: str = message.get("EventKey") or ""
        self.content: str = message.get("Content") or ""
        self._person = None
        self._person_loaded = False
        # The raw conversation state when the caller already read it (the callback reads it with
        # its claim); used once, by the first conversation_state().
        self._conversation_raw = conversation

    @property
    def scene(self) -> str | None:
        """The QR scene of a parameter-QR follow, a SCAN, or a scancode_* menu result."""
        if self.event == "subscribe" and self.event_key.startswith("qrscene_"):
            return self.event_key[len("qrscene_"):]
        if self.event == "scan":
            return self.event_key
        if self.event in ("scancode_push", "scancode_waitmsg"):
            info = self.message.get("ScanCodeInfo") or {}
            return info.get("ScanResult") if isinstance(info, dict) else None
        return None

    @property
    def created_at(self) -> datetime:
        try:
            return datetime.fromtimestamp(int(self.message.get("CreateTime", 0)), timezone.utc)
        except (TypeError, ValueError, OverflowError):
            return datetime.now(timezone.utc)

    @property
    def person(self):
        """The Person behind this OA openid, or None."""
        if not self._person_loaded:
            from server.extensions import db
            from server.models import Person

            self._person = db.scalars(select(Person).where(Person.oa_openid == self.openid)).first()
            self._person_loaded = True
        return self._person

    def forget_person(self) -> None:
        self._person_loaded = False

    # -- conversation state (Redis, with expiry) ---------------------------------------------

    def _conv_key(self) -> str:
        return conversation_key(self.openid)

    def ask(self, step: str, data: dict | None = None, ttl: int = CONVERSATION_TTL) -> None:
        """Read the user's next text message with the conversation handler ``step``."""
        self._conversation_raw = NOT_FETCHED
        self.redis.set(self._conv_key(), json.dumps({"step": step, "data": data or {}}, ensure_ascii=False), ex=ttl)

    def conversation_state(self) -> dict | None:
        raw, self._conversation_raw = self._conversation_raw, NOT_FETCHED
        if raw is NOT_FETCHED:
            raw = self.redis.get(self._conv_key())
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def end_conversation(self) -> None:
        self._conversation_raw = NOT_FETCHED
        self.redis.delete(self._conv_key())


router = Router()
