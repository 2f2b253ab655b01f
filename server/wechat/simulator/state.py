"""Everything the simulator remembers, behind one lock.

One :class:`SimState` lives at ``app.extensions["simulator"]``.  Its
methods are the API tests and the ``/sim`` control endpoints use; the
WeChat endpoints in :mod:`.api` also read and change the plain containers
(tags, menu, qrcodes ...) directly, always while holding ``state.lock``.
Nothing sleeps or does I/O while holding the lock.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone

#: WeChat's messages for the codes the simulator answers with.
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40029: "invalid code",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40052: "invalid action name",
    40053: "invalid action info, please check document",
    40054: "invalid sub button url domain",
    40055: "invalid button url domain",
    40058: "content exceed max length",
    40066: "invalid url",
    40097: "invalid args",
    40125: "invalid appsecret",
    40130: "invalid openid list size, at least two openid",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    41001: "access_token missing",
    41030: "invalid page",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    43019: "require remove blacklist",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45047: "out of response count limit",
    45056: "too many tag now, no need to add new",
    45058: "can't modify sys tag",
    45059: "user tag count exceeds limit",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    87014: "risky content",
    93000: "invalid webhook url",
}

WEBHOOK_PER_MINUTE = 20
CODE_LIFETIME = 300
MAX_MESSAGES = 100_000


class WxError(Exception):
    """An error answer ``{"errcode": N, "errmsg": "..."}`` (HTTP ``status``, 200 like WeChat)."""

    def __init__(self, errcode: int, errmsg: str | None = None, status: int = 200):
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")
        self.status = status
        super().__init__(f"{errcode} {self.errmsg}")


@dataclass
class SimConfig:
    oa_appid: str
    oa_secret: str
    mp_appid: str
    mp_secret: str
    oa_token: str
    oa_aes_key: str
    callback_url: str | None = None
    latency_ms: int = 0
    token_ttl: int = 7200
    enforce_consent: bool = False


#: Settings ``POST /sim/config`` may change; ``reset()`` restores their start values.
RUNTIME_SETTINGS = {"latency_ms": int, "token_ttl": int, "enforce_consent": bool}


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def api_name(path: str) -> str:
    """``/cgi-bin/message/custom/send`` -> ``message/custom/send``; ``/wxa/x`` -> ``wxa/x``."""
    path = path.strip().lstrip("/")
    return path[len("cgi-bin/"):] if path.startswith("cgi-bin/") else path


class SimState:
    """The simulator's memory: tokens, recorded messages, faults, users, tags, menu, QR codes."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.lock = threading.Lock()
        self._initial = {name: getattr(config, name) for name in RUNTIME_SETTINGS}
        self._secrets = {config.oa_appid: config.oa_secret, config.mp_appid: config.mp_secret}
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything recorded; keep credentials and restore the start-up settings."""
        with self.lock:
            for name, value in self._initial.items():
                setattr(self.config, name, value)
            self._seq = itertools.count(1)
            self.messages_log: deque[dict] = deque(maxlen=MAX_MESSAGES)
            self.faults: list[dict] = []
            self.tokens: dict[str, list] = {}  # token -> [appid, expires_at]
            self.stable: dict[str, str] = {}  # appid -> current stable token
            self.issued: Counter = Counter()  # appid -> tokens issued
            self.requests: Counter = Counter()  # api -> requests seen
            self.used_codes: dict[str, float] = {}
            self.followers: dict[str, int] = {}  # OA openid -> subscribe_time
            self.unsubscribed: set[str] = set()
            self.consents: dict[tuple[str, str], int] = {}
            self.tags: dict[int, str] = {}
            self.user_tags: dict[str, set[int]] = {}
            self._tag_ids = itertools.count(100)
            self.menu: dict | None = None
            self.qrcodes: dict[str, dict] = {}
            self.webhook_sent: dict[str, deque] = {}
            self.webhook_failures: dict[str, int] = {}

    def configure(self, **settings) -> dict:
        """Change runtime settings (``latency_ms``, ``token_ttl``, ``enforce_consent``)."""
        with self.lock:
            for name, value in settings.items():
                if name not in RUNTIME_SETTINGS:
                    raise KeyError(name)
                setattr(self.config, name, RUNTIME_SETTINGS[name](value))
            return self.settings()

    def settings(self) -> dict:
        return {name: getattr(self.config, name) for name in RUNTIME_SETTINGS}

    # -- apps and access tokens --------------------------------------------------------------

    def secret_for(self, appid: str) -> str | None:
        return self._secrets.get(appid)

    def app_kind(self, appid: str) -> str:
        return "oa" if appid == self.config.oa_appid else "mp"

    def issue_token(self, appid: str, stable: bool = False, force: bool = False) -> tuple[str, int]:
        """A token for ``appid`` and its remaining lifetime; stable mode reuses a still-valid one."""
        now = time.time()
        with self.lock:
            if stable and not force:
                current = self.stable.get(appid)
                entry = self.tokens.get(current) if current else None
                if entry and entry[1] > now:
                    return current, int(entry[1] - now)
            if len(self.tokens) > 10_000:
                self.tokens = {t: e for t, e in self.tokens.items() if e[1] > now}
            token = secrets.token_urlsafe(48)
            ttl = self.config.token_ttl
            self.tokens[token] = [appid, now + ttl]
            self.issued[appid] += 1
            if stable:
                self.stable[appid] = token
            return token, ttl

    def check_token(self, token: str | None) -> str:
        """The appid a valid token belongs to; raises 41001 / 40001 / 42001 like WeChat."""
        if not token:
            raise WxError(41001)
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None:
            raise WxError(40001)
        if entry[1] <= time.time():
            raise WxError(42001)
        return entry[0]

    def expire_tokens(self) -> int:
        with self.lock:
            for entry in self.tokens.values():
                entry[1] = 0.0
            return len(self.tokens)

    def token_count(self, appid: str) -> int:
        """How many access tokens were issued to ``appid`` since the last reset."""
        with self.lock:
            return self.issued[appid]

    # -- requests, latency and faults --------------------------------------------------------

    def begin_request(self, api: str) -> tuple[float, dict | None]:
        """Count a request to ``api``; return (seconds to sleep, fault to answer with or None)."""
        with self.lock:
            self.requests[api] += 1
            delay = self.config.latency_ms
            fault = None
            for candidate in self.faults:
                if candidate["api"] == api or (candidate["api"] == "*" and api not in ("token", "stable_token")):
                    fault = dict(candidate)
                    candidate["count"] -= 1
                    if candidate["count"] <= 0:
                        self.faults.remove(candidate)
                    delay += fault.get("latency_ms") or 0
                    break
        return delay / 1000.0, fault

    def add_fault(self, api: str = "*", errcode: int | None = None, count: int = 1,
                  latency_ms: int | None = None, http_status: int | None = None) -> dict:
        """Make the next ``count`` calls to ``api`` fail with ``errcode`` / ``http_status`` (or just be slow).

        ``api`` is a path with or without ``/cgi-bin/`` (``message/custom/send``, ``wxa/msg_sec_check``,
        ``webhook/send``) or ``"*"``, which matches every API except ``token`` and ``stable_token``.
        """
        if errcode is None and http_status is None and not latency_ms:
            raise ValueError("a fault needs errcode, http_status or latency_ms")
        if int(count) < 1:
            raise ValueError("count must be at least 1")
        fault = {
            "api": "*" if api == "*" else api_name(api),
            "errcode": None if errcode is None else int(errcode),
            "count": int(count),
            "latency_ms": int(latency_ms or 0),
            "http_status": None if http_status is None else int(http_status),
        }
        with self.lock:
            self.faults.append(fault)
        return dict(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def list_faults(self) -> list[dict]:
        with self.lock:
            return [dict(f) for f in self.faults]

    # -- recorded messages -------------------------------------------------------------------

    def record(self, api: str, appid: str | None, payload: dict, **fields) -> dict:
        """Record an accepted message; ``fields`` are touser/webhook_key, msgtype, template_id."""
        entry = {"id": 0, "api": api, "appid": appid, **fields, "payload": payload, "at": now_iso()}
        with self.lock:
            entry["id"] = next(self._seq)
            self.messages_log.append(entry)
        return entry

    def next_id(self) -> int:
        with self.lock:
            return next(self._seq)

    def messages(self, touser: str | None = None, api: str | None = None, since_id: int | None = None) -> list[dict]:
        """Recorded messages, oldest first; ``touser`` also matches a member of a mass-send list."""
        api = api_name(api) if api else None
        with self.lock:
            found = list(self.messages_log)
        out = []
        for m in found:
            if since_id is not None and m["id"] <= since_id:
                continue
            if api and m["api"] != api:
                continue
            if touser is not None:
                target = m.get("touser")
                if not (target == touser or (isinstance(target, list) and touser in target)):
                    continue
            out.append(m)
        return out

    def clear_messages(self) -> None:
        with self.lock:
            self.messages_log.clear()

    def stats(self) -> dict:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "tokens_issued": dict(self.issued),
                "messages": len(self.messages_log),
                "faults_pending": len(self.faults),
            }

    # -- mini-program login codes ------------------------------------------------------------

    def use_code(self, code: str) -> None:
        """Mark a wx.login code used; a second use within its lifetime answers 40163."""
        now = time.time()
        with self.lock:
            used_at = self.used_codes.get(code)
            if used_at is not None and now - used_at < CODE_LIFETIME:
                raise WxError(40163)
            if len(self.used_codes) > 50_000:
                self.used_codes = {c: t for c, t in self.used_codes.items() if now - t < CODE_LIFETIME}
            self.used_codes[code] = now

    # -- followers and consents --------------------------------------------------------------

    def set_subscribed(self, openid: str, subscribed: bool) -> None:
        with self.lock:
            if subscribed:
                self.unsubscribed.discard(openid)
                self.followers[openid] = int(time.time())
            else:
                self.unsubscribed.add(openid)

    def seen(self, openid: str) -> bool:
        """Note an OA openid as a follower (first sight); True if it is subscribed."""
        with self.lock:
            self.followers.setdefault(openid, int(time.time()))
            return openid not in self.unsubscribed

    def set_consent(self, openid: str, template_id: str, count: int) -> None:
        with self.lock:
            self.consents[(openid, template_id)] = max(0, int(count))

    def take_consent(self, openid: str, template_id: str) -> bool:
        """Use one subscription consent; with none recorded, accept unless ``enforce_consent``."""
        with self.lock:
            left = self.consents.get((openid, template_id))
            if left is None:
                return not self.config.enforce_consent
            if left <= 0:
                return False
            self.consents[(openid, template_id)] = left - 1
            return True

    # -- WeCom webhooks ----------------------------------------------------------------------

    def webhook_admit(self, key: str) -> None:
        """Raise the errcode a key was marked with, or 45009 past 20 messages a minute."""
        now = time.monotonic()
        with self.lock:
            failure = self.webhook_failures.get(key)
            if failure is not None:
                raise WxError(failure)
            sent = self.webhook_sent.setdefault(key, deque())
            while sent and now - sent[0] >= 60:
                sent.popleft()
            if len(sent) >= WEBHOOK_PER_MINUTE:
                raise WxError(45009, "api freq out of limit")
            sent.append(now)

    def set_webhook_failure(self, key: str, errcode: int | None) -> None:
        with self.lock:
            if errcode is None:
                self.webhook_failures.pop(key, None)
            else:
                self.webhook_failures[key] = int(errcode)
