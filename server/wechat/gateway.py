"""The only code that talks to WeChat: wechatpy clients bound to the configured API base.

* :class:`GatewayClient` is a ``wechatpy.WeChatClient`` whose every URL on
  ``https://api.weixin.qq.com`` is rewritten to ``WECHAT_API_BASE``, whose
  HTTP goes through one pooled ``requests.Session`` per process with the
  ``WECHAT_HTTP_TIMEOUT`` (a plain call, the usual case, goes straight to
  the session's urllib3 pool: see :func:`_plain_request`), and whose access
  token lives in Redis, shared
  by all processes (:class:`TokenStore`); inside :func:`token_cache` (a
  delivery job) each process also keeps it in memory until shortly before
  the Redis copy expires, so a batch of sends reads Redis once.
* Every failure surfaces as :class:`~server.wechat.errors.WeChatAPIError`
  with ``kind`` permanent / transient / token.  A rejected token
  (40001/40014/42001) is invalidated and refreshed once and the call
  retried once; wechatpy's own ``auto_retry`` is off.
* The module functions (``send_template``, ``jscode2session`` ...) are what
  services and jobs call; they need an app context.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from functools import lru_cache
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_environ_proxies
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util import Retry, Timeout
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from .errors import WeChatAPIError, classify

__all__ = [
    "WeChatAPIError", "classify", "GatewayClient", "TokenStore", "token_cache", "oa_client", "mp_client", "http_session",
    "jscode2session", "wecom_webhook_send", "send_custom_text", "send_template", "send_mp_subscribe",
    "get_user_info", "create_menu", "create_qrcode", "msg_sec_check", "get_wxacode_unlimited",
]

log = logging.getLogger("unionhub.wechat")

WECHAT_API_HOST = "https://api.weixin.qq.com"
TOKEN_KEY = "unionhub:wechat:token:{appid}"
LOCK_KEY = "unionhub:wechat:token-lock:{appid}"
TOKEN_MARGIN = 300  # seconds a token is dropped from the cache before WeChat expires it
LOCAL_MARGIN = 5.0  # seconds an in-memory copy is dropped before the Redis copy expires
POLL_INTERVAL = 0.05
#: Endpoints called with credentials or a ticket rather than an access token.
NO_TOKEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token", "/sns/jscode2session", "/cgi-bin/showqrcode"})

# Delete a key only while it still holds the given value (lock release, token invalidation).
_DELETE_IF_EQUAL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


# -- HTTP ----------------------------------------------------------------------------------------

_http_lock = threading.Lock()
_http: tuple[int, requests.Session] | None = None


def http_session() -> requests.Session:
    """The process's pooled session (recreated after a fork, so workers never share sockets)."""
    global _http
    current = _http
    if current is not None and current[0] == os.getpid():
        return current[1]
    with _http_lock:
        if _http is None or _http[0] != os.getpid():
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _http = (os.getpid(), session)
        return _http[1]


def _error_from_http(res: requests.Response, body) -> WeChatAPIError:
    errcode = body.get("errcode") if isinstance(body, dict) else None
    errmsg = body.get("errmsg") if isinstance(body, dict) else None
    status = res.status_code
    if status >= 500 or status in (408, 429):
        kind = "transient"
    else:
        kind = classify(int(errcode)) if errcode is not None else "permanent"
    return WeChatAPIError(None if errcode is None else int(errcode), errmsg or f"HTTP {status}", kind=kind,
                          http_status=status)


def parse_response(res: requests.Response):
    """A JSON answer as a dict (raising for a non-zero errcode), else the response itself (images)."""
    content_type = res.headers.get("Content-Type", "")
    body = None if content_type.startswith("image/") else _json_body(res.content)
    if res.status_code >= 400:
        raise _error_from_http(res, body)
    if not isinstance(body, dict):
        if content_type.startswith("text/html"):  # an error page from some proxy, not WeChat's answer
            raise WeChatAPIError(None, f"unexpected HTML answer (HTTP {res.status_code})", http_status=res.status_code)
        return res
    return _checked(body)


def _json_body(content: bytes):
    """The decoded JSON of an answer's body; None when it is not JSON."""
    try:
        return json.loads(content.decode("utf-8", "ignore"), strict=False)
    except ValueError:
        return None


def _checked(body: dict) -> dict:
    """WeChat's JSON answer, raising WeChatAPIError for a non-zero errcode."""
    errcode = body.get("errcode")
    if errcode not in (None, 0, "0"):
        raise WeChatAPIError(int(errcode), body.get("errmsg"))
    return body


@lru_cache(maxsize=64)
def _proxied(origin: str) -> bool:
    """True when the environment (HTTP(S)_PROXY, NO_PROXY) routes ``origin`` through a proxy (read once per origin)."""
    return bool(get_environ_proxies(origin))


_NO_RETRY = Retry(False, redirect=False)  # what urllib3 makes of retries=False, redirect=False: built once


@lru_cache(maxsize=16)
def _timeout(seconds: float) -> Timeout:
    return Timeout(connect=seconds, read=seconds)


def _plain_request(session: requests.Session, method: str, url: str, timeout: float, params=None, data=None,
                   headers=None, **other) -> BaseHTTPResponse | None:
    """A plain call (bytes or no body, no proxy, the session's own HTTPAdapter) sent straight to the adapter's
    urllib3 pool: urllib3's response (body read); None for anything else, which takes requests' full path.

    ``Session.request`` costs about twice the HTTP exchange itself (environment and proxy lookups,
    cookies, hooks, redirect handling) and WeChat's APIs need none of it; a broadcast makes one call
    per message.  Same pools, TLS settings, timeouts and no retries as the full path, and the same
    exceptions (requests') on failure.
    """
    if other or not (data is None or isinstance(data, bytes)) or session.proxies:
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    adapter = session.get_adapter(url)
    if type(adapter) is not HTTPAdapter or (session.trust_env and _proxied(origin)):
        return None
    query = "&".join(filter(None, (parts.query, urlencode(params) if params else "")))
    target = (parts.path or "/") + (f"?{query}" if query else "")
    sent = {**session.headers, **(headers or {})}
    try:
        # The pool is chosen by the origin alone (parsing the whole URL, token included, would cost more).
        pool = adapter.get_connection_with_tls_context(SimpleNamespace(url=origin), session.verify, cert=session.cert)
        return pool.urlopen(method.upper(), target, body=data, headers=sent, redirect=False, assert_same_host=False,
                            retries=_NO_RETRY, timeout=_timeout(timeout), preload_content=True, decode_content=True)
    except ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc) from exc
    except ConnectTimeoutError as exc:
        raise (requests.ConnectionError if isinstance(exc, NewConnectionError) else requests.ConnectTimeout)(exc) from exc
    except (URLLib3Error, OSError) as exc:
        raise requests.ConnectionError(exc) from exc


def _as_response(raw: BaseHTTPResponse, url: str) -> requests.Response:
    res = requests.Response()
    res.status_code, res.reason, res.url, res._content = raw.status, raw.reason, url, raw.data
    res.headers = CaseInsensitiveDict(raw.headers)
    res.encoding = get_encoding_from_headers(res.headers)
    return res


def _json_answer(raw: BaseHTTPResponse) -> dict | None:
    """The usual answer read straight from urllib3's response: a JSON object with a success status, checked as
    :func:`parse_response` checks it; None for anything else (parse_response decides on the full response)."""
    if raw.status >= 400 or raw.headers.get("Content-Type", "").startswith("image/"):
        return None
    body = _json_body(raw.data)
    return _checked(body) if isinstance(body, dict) else None


def _send(method: str, url: str, timeout: float, **kwargs):
    session = http_session()
    try:
        raw = _plain_request(session, method, url, timeout, **kwargs)
        if raw is None:
            res = session.request(method, url, timeout=timeout, **kwargs)
        else:
            body = _json_answer(raw)
            if body is not None:
                return body
            res = _as_response(raw, url)
    except requests.RequestException as exc:
        raise WeChatAPIError(None, f"{type(exc).__name__}: {exc}") from exc
    return parse_response(res)


# -- access tokens -------------------------------------------------------------------------------

_scope_lock = threading.Lock()
_scopes = 0  # token_cache() blocks open in this process
_generation = 0  # bumped whenever the first block opens: copies from an earlier block are never used


@contextmanager
def token_cache():
    """Keep access tokens in memory while the block runs (all threads of the process share them).

    Outside such a block every call reads Redis, so a token replaced or deleted there (by another
    process, an operator, a test) is seen at once; inside, a token refused by WeChat is still
    refreshed once through Redis and the new one replaces the copy.
    """
    global _scopes, _generation
    with _scope_lock:
        if _scopes == 0:
            _generation += 1
        _scopes += 1
    try:
        yield
    finally:
        with _scope_lock:
            _scopes -= 1


class TokenStore:
    """One app's access token in Redis, refreshed by one process at a time under a Redis lock."""

    def __init__(self, redis, appid: str, fetch, wait_seconds: float):
        self.redis = redis
        self.key = TOKEN_KEY.format(appid=appid)
        self.lock_key = LOCK_KEY.format(appid=appid)
        self.fetch = fetch  # fetch(force: bool) -> {"access_token", "expires_in"}
        self.wait_seconds = wait_seconds
        self._local: tuple[str, float, int] | None = None  # (token, monotonic deadline, generation)

    def cached(self) -> str | None:
        """The token in Redis (never the in-memory copy)."""
        value = self.redis.get(self.key)
        return value.decode() if value else None

    def get(self) -> str:
        if not _scopes:
            return self.cached() or self.refresh()
        local = self._local
        if local is not None and local[2] == _generation and time.monotonic() < local[1]:
            return local[0]
        with self.redis.pipeline(transaction=False) as pipe:
            value, ttl_ms = pipe.get(self.key).pttl(self.key).execute()
        if not value:
            return self.refresh()
        token = value.decode()
        self._remember(token, ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else 0)
        return token

    def _remember(self, token: str, ttl: float) -> None:
        if _scopes and ttl > LOCAL_MARGIN:
            self._local = (token, time.monotonic() + ttl - LOCAL_MARGIN, _generation)

    def invalidate(self, token: str) -> None:
        """Drop the cached token (and the in-memory copy), but only if it is still the one that failed."""
        local = self._local
        if local is not None and local[0] == token:
            self._local = None
        self.redis.eval(_DELETE_IF_EQUAL, 1, self.key, token)

    def refresh(self, stale: str | None = None) -> str:
        """A token other than ``stale``: fetch it under the lock, or wait for whoever holds the lock."""
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self.redis.set(self.lock_key, owner, nx=True, px=int(self.wait_seconds * 1000)):
                try:
                    current = self.cached()
                    if current and current != stale:
                        return self._found(current)
                    return self._fetch_and_store(stale)
                finally:
                    self.redis.eval(_DELETE_IF_EQUAL, 1, self.lock_key, owner)
            time.sleep(POLL_INTERVAL)
            current = self.cached()
            if current and current != stale:
                return self._found(current)
            if time.monotonic() > deadline:
                raise WeChatAPIError(None, "timed out waiting for another process to refresh the access token")

    def _found(self, token: str) -> str:
        """A token another process stored: remembered in memory (inside token_cache) for its Redis lifetime."""
        if _scopes:
            ttl_ms = self.redis.pttl(self.key)
            self._remember(token, ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else 0)
        return token

    def _fetch_and_store(self, stale: str | None) -> str:
        result = self.fetch(False)
        if stale and result["access_token"] == stale:
            # WeChat still calls the token valid but an API just refused it: ask for a new one.
            result = self.fetch(True)
        token, expires_in = result["access_token"], int(result.get("expires_in") or 7200)
        ttl = expires_in - TOKEN_MARGIN if expires_in > 2 * TOKEN_MARGIN else max(expires_in // 2, 1)
        self.redis.set(self.key, token, ex=ttl)
        self._remember(token, ttl)
        log.info("fetched a new access token (expires in %ss, cached %ss)", expires_in, ttl)
        return token


# -- the client ----------------------------------------------------------------------------------

class GatewayClient(WeChatClient):
    """``WeChatClient`` on a configurable API base, with the shared Redis token and one retry on 40001/42001."""

    def __init__(self, appid: str, secret: str, *, api_base: str, redis, timeout: float):
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")
        self.tokens = TokenStore(redis, appid, self._fetch_stable_token, wait_seconds=max(3.0, timeout + 2))

    # wechatpy's __init__ assigns its own session; every request uses the pooled one instead.
    @property
    def _http(self) -> requests.Session:
        return http_session()

    @_http.setter
    def _http(self, _value) -> None:
        pass

    def rewrite(self, url: str) -> str:
        if url.startswith(WECHAT_API_HOST):
            return self.api_base + url[len(WECHAT_API_HOST):]
        return url

    @property
    def access_token(self) -> str:
        return self.tokens.get()

    def fetch_access_token(self) -> dict:
        token = self.tokens.refresh(stale=self.tokens.cached())
        return {"access_token": token}

    def _fetch_stable_token(self, force: bool) -> dict:
        body = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret, "force_refresh": force}
        return _send("post", self.rewrite(WECHAT_API_HOST + "/cgi-bin/stable_token"), self.timeout,
                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def _request(self, method, url_or_endpoint, **kwargs):
        base = kwargs.pop("api_base_url", None) or self.API_BASE_URL
        url = url_or_endpoint if url_or_endpoint.startswith(("http://", "https://")) else base + url_or_endpoint
        url = self.rewrite(url)
        result_processor = kwargs.pop("result_processor", None)
        params = dict(kwargs.pop("params", None) or {})
        if isinstance(kwargs.get("data"), dict):
            kwargs["data"] = json.dumps(kwargs["data"], ensure_ascii=False).encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/json", **(kwargs.get("headers") or {})}
        timeout = kwargs.pop("timeout", None) or self.timeout
        managed = "access_token" not in params and urlsplit(url).path not in NO_TOKEN_PATHS
        for attempt in (1, 2):
            if managed:
                params["access_token"] = token = self.access_token
            try:
                result = _send(method, url, timeout, params=params, **kwargs)
            except WeChatAPIError as exc:
                if exc.kind != "token" or not managed or attempt == 2:
                    raise
                log.info("access token refused (%s), refreshing once", exc.errcode)
                self.tokens.invalidate(token)
                self.tokens.refresh(stale=token)
                continue
            return result_processor(result) if result_processor and isinstance(result, dict) else result


# -- configured clients --------------------------------------------------------------------------

_clients: dict[tuple, GatewayClient] = {}
_clients_lock = threading.Lock()


def _client(appid: str, secret: str) -> GatewayClient:
    ext = current_app.extensions["unionhub"]
    config, redis = ext["config"], ext["redis"]
    key = (appid, secret, config.WECHAT_API_BASE, config.WECHAT_HTTP_TIMEOUT, redis)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.setdefault(key, GatewayClient(
                appid, secret, api_base=config.WECHAT_API_BASE, redis=redis, timeout=config.WECHAT_HTTP_TIMEOUT))
    return client


def _config():
    return current_app.extensions["unionhub"]["config"]


def oa_client() -> GatewayClient:
    """The Official Account's client (one per configuration and process)."""
    config = _config()
    return _client(config.WECHAT_OA_APPID, config.WECHAT_OA_SECRET)


def mp_client() -> GatewayClient:
    """The mini-program's client (one per configuration and process)."""
    config = _config()
    return _client(config.WECHAT_MP_APPID, config.WECHAT_MP_SECRET)


@contextmanager
def _one_error_type():
    """Turn whatever wechatpy or requests might still raise into WeChatAPIError."""
    try:
        yield
    except WeChatClientException as exc:
        raise WeChatAPIError(exc.errcode if isinstance(exc.errcode, int) else None, str(exc.errmsg)) from exc
    except requests.RequestException as exc:
        raise WeChatAPIError(None, f"{type(exc).__name__}: {exc}") from exc


# -- what the rest of UnionHub calls -------------------------------------------------------------

def jscode2session(code: str) -> dict:
    """Exchange a wx.login code: ``{"openid", "session_key", "unionid"?}``."""
    with _one_error_type():
        return mp_client().wxa.code_to_session(code)


def wecom_webhook_send(key: str, payload: dict) -> dict:
    """Post ``payload`` (``{"msgtype": "text", "text": {...}}``) to a WeCom group bot."""
    config = _config()
    return _send("post", config.WECOM_API_BASE + "/cgi-bin/webhook/send", config.WECHAT_HTTP_TIMEOUT,
                 params={"key": key}, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                 headers={"Content-Type": "application/json"})


def _message_data(data: dict) -> dict:
    """Accept ``{"thing1": "text"}`` as shorthand for ``{"thing1": {"value": "text"}}``."""
    return {k: v if isinstance(v, dict) else {"value": v} for k, v in data.items()}


def send_custom_text(openid: str, content: str) -> dict:
    with _one_error_type():
        return oa_client().message.send_text(openid, content)


def send_template(openid: str, template_id: str, data: dict, url: str | None = None,
                  miniprogram: dict | None = None) -> dict:
    """An OA template message; answers ``{"msgid": ...}``."""
    with _one_error_type():
        return oa_client().message.send_template(openid, template_id, _message_data(data), url=url,
                                                 mini_program=miniprogram)


def send_mp_subscribe(openid: str, template_id: str, data: dict, page: str | None = None,
                      miniprogram_state: str | None = None, lang: str = "zh_CN") -> dict:
    """A mini-program subscribe message (one consent per message); 43101 when the user has none.

    ``miniprogram_state`` (the version the message opens) defaults to WECHAT_MINIPROGRAM_STATE.
    """
    body = {"touser": openid, "template_id": template_id, "data": _message_data(data), "lang": lang,
            "miniprogram_state": miniprogram_state or _config().WECHAT_MINIPROGRAM_STATE}
    if page:
        body["page"] = page
    with _one_error_type():
        return mp_client().post("message/subscribe/send", data=body)


def get_user_info(openid: str) -> dict:
    """The OA's ``user/info``: subscribe (0/1), unionid, tagid_list ..."""
    with _one_error_type():
        return oa_client().user.get(openid)


def create_menu(menu: dict) -> dict:
    with _one_error_type():
        return oa_client().menu.create(menu)


def create_qrcode(scene_str: str, expire_seconds: int | None = None) -> dict:
    """A parametric OA QR code: permanent (QR_LIMIT_STR_SCENE) unless ``expire_seconds`` is given."""
    body: dict = {"action_info": {"scene": {"scene_str": scene_str}}}
    if expire_seconds is None:
        body["action_name"] = "QR_LIMIT_STR_SCENE"
    else:
        body.update(action_name="QR_STR_SCENE", expire_seconds=int(expire_seconds))
    with _one_error_type():
        return oa_client().qrcode.create(body)


def msg_sec_check(openid: str, content: str, scene: int = 2) -> dict:
    """Content security v2; ``result["result"]["suggest"]`` is pass, review or risky."""
    body = {"openid": openid, "scene": scene, "version": 2, "content": content}
    with _one_error_type():
        return mp_client().post("https://api.weixin.qq.com/wxa/msg_sec_check", data=body)


def get_wxacode_unlimited(scene: str, page: str | None = None, width: int = 430) -> bytes:
    """A mini-program code image (PNG bytes) for ``scene`` (at most 32 characters)."""
    with _one_error_type():
        res = mp_client().wxa.get_wxa_code_unlimited(scene, width=width, page=page)
    if isinstance(res, dict):
        raise WeChatAPIError(None, "expected an image, got JSON", kind="permanent")
    return res.content
