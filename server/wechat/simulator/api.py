"""The simulated WeChat endpoints: api.weixin.qq.com (OA and mini-program) and the WeCom group bot.

Every endpoint is registered through :func:`endpoint`, which does what
WeChat does before the handler runs: count the request, apply latency and
injected faults, check ``access_token`` (41001/40001/42001) and that the
token belongs to the right kind of app (48001).  Handlers raise
:class:`WxError` for error answers and return the success fields; WeChat
adds ``errcode: 0`` to some answers and not to others (``bare``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import time

from flask import Blueprint, Response, current_app, request

from .identity import identities, unionid_for_oa_openid
from .rules import check_menu, check_message_data, code_png, sec_check, selfmenu_info
from .state import SimState, WxError, api_name

bp = Blueprint("wechat_api", __name__)


def state() -> SimState:
    return current_app.extensions["simulator"]


def wx_json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    content_type="application/json; encoding=utf-8")


def wx_error(exc: WxError) -> Response:
    return wx_json({"errcode": exc.errcode, "errmsg": exc.errmsg}, exc.status)


def png_response(text: str) -> Response:
    return Response(code_png(text), content_type="image/png")


class Call:
    """What a handler gets: the state, the caller's appid (from its token) and the JSON body."""

    __slots__ = ("state", "api", "appid", "_body")

    def __init__(self, st: SimState, api: str):
        self.state = st
        self.api = api
        self.appid: str | None = None
        self._body = None

    def body(self) -> dict:
        if self._body is None:
            raw = request.get_data(cache=False)
            if not raw.strip():
                raise WxError(44002)
            try:
                self._body = json.loads(raw)
            except ValueError:
                raise WxError(47001) from None
            if not isinstance(self._body, dict):
                raise WxError(47001)
        return self._body

    def record(self, **fields) -> dict:
        return self.state.record(self.api, self.appid, self.body(), **fields)


def _fault_response(fault: dict) -> Response | None:
    status = fault.get("http_status")
    if status:
        if fault.get("errcode") is not None:
            return wx_error(WxError(fault["errcode"], status=status))
        return Response(f"<html><body><h1>{status}</h1></body></html>", status=status, content_type="text/html")
    if fault.get("errcode") is not None:
        return wx_error(WxError(fault["errcode"]))
    return None  # a latency-only fault


def endpoint(path: str, methods=("POST",), app: str | None = None, token: bool = True, bare: bool = False):
    """Register a WeChat endpoint; ``app`` ("oa"/"mp") restricts which app's token may call it."""
    api = api_name(path)

    def register(handler):
        def view():
            st = state()
            delay, fault = st.begin_request(api)
            if delay:
                time.sleep(delay)
            if fault and (faulted := _fault_response(fault)) is not None:
                return faulted
            call = Call(st, api)
            try:
                if token:
                    call.appid = st.check_token(request.args.get("access_token"))
                    if app and st.app_kind(call.appid) != app:
                        raise WxError(48001)
                result = handler(call)
            except WxError as exc:
                return wx_error(exc)
            if isinstance(result, Response):
                return result
            return wx_json(result if bare else {"errcode": 0, "errmsg": "ok", **result})

        bp.add_url_rule(path, endpoint=api.replace("/", "_"), view_func=view, methods=list(methods))
        return handler

    return register


def _text(source: dict, field: str, errcode: int) -> str:
    value = source.get(field)
    if not isinstance(value, str) or not value:
        raise WxError(errcode)
    return value


def _int(value, errcode: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
        raise WxError(errcode)
    return int(value)


# -- access tokens and login -------------------------------------------------------------------

def _issue(st: SimState, appid, secret, stable: bool = False, force: bool = False) -> dict:
    expected = st.secret_for(appid or "")
    if expected is None:
        raise WxError(40013)
    if secret != expected:
        raise WxError(40125)
    token, expires_in = st.issue_token(appid, stable=stable, force=force)
    return {"access_token": token, "expires_in": expires_in}


@endpoint("/cgi-bin/token", methods=("GET",), token=False, bare=True)
def get_token(call: Call):
    args = request.args
    if args.get("grant_type") != "client_credential":
        raise WxError(40002)
    return _issue(call.state, args.get("appid"), args.get("secret"))


@endpoint("/cgi-bin/stable_token", token=False, bare=True)
def stable_token(call: Call):
    body = call.body()
    if body.get("grant_type") != "client_credential":
        raise WxError(40002)
    force = body.get("force_refresh") in (True, "true", 1)
    return _issue(call.state, body.get("appid"), body.get("secret"), stable=True, force=force)


@endpoint("/sns/jscode2session", methods=("GET",), token=False, bare=True)
def jscode2session(call: Call):
    args, config = request.args, call.state.config
    if args.get("appid") != config.mp_appid:
        raise WxError(40013)
    if args.get("secret") != config.mp_secret:
        raise WxError(40125)
    if args.get("grant_type", "authorization_code") != "authorization_code":
        raise WxError(40002)
    code = args.get("js_code", "")
    openid = code[4:].split("#", 1)[0] if code.startswith("sim:") else ""
    if not openid:
        raise WxError(40029)
    call.state.use_code(code)
    return {
        "session_key": base64.b64encode(os.urandom(16)).decode(),
        "openid": openid,
        "unionid": identities(openid)["unionid"],
    }


# -- messages ----------------------------------------------------------------------------------

CUSTOM_TYPES = frozenset({"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle",
                          "msgmenu", "wxcard", "miniprogrampage", "link"})
MASS_TYPES = frozenset({"mpnews", "text", "voice", "image", "mpvideo", "wxcard", "mpnewsarticle"})
MP_STATES = (None, "developer", "trial", "formal")
MP_LANGS = (None, "zh_CN", "en_US", "zh_HK", "zh_TW")


def _msgtype(body: dict, allowed: frozenset) -> str:
    msgtype = body.get("msgtype")
    if msgtype not in allowed:
        raise WxError(40008)
    section = body.get(msgtype)
    if not isinstance(section, dict):
        raise WxError(47001, f"data format error: {msgtype} is missing")
    if msgtype == "text" and not section.get("content"):
        raise WxError(44004)
    return msgtype


def _subscribe_message(call: Call, **extra) -> dict:
    """The checks OA and mini-program subscribe messages share; records and returns the record."""
    body = call.body()
    touser = _text(body, "touser", 40003)
    template_id = _text(body, "template_id", 40037)
    check_message_data(body.get("data"))
    if not call.state.take_consent(touser, template_id):
        raise WxError(43101)
    return call.record(touser=touser, template_id=template_id, **extra)


@endpoint("/cgi-bin/message/template/send", app="oa")
def template_send(call: Call):
    body = call.body()
    touser = _text(body, "touser", 40003)
    template_id = _text(body, "template_id", 40037)
    check_message_data(body.get("data"))
    if not call.state.seen(touser):
        raise WxError(43004)
    return {"msgid": call.record(touser=touser, template_id=template_id)["id"]}


@endpoint("/cgi-bin/message/subscribe/bizsend", app="oa")
def oa_subscribe_send(call: Call):
    _subscribe_message(call)
    return {}


@endpoint("/cgi-bin/message/subscribe/send", app="mp")
def mp_subscribe_send(call: Call):
    body = call.body()
    if body.get("miniprogram_state") not in MP_STATES or body.get("lang") not in MP_LANGS:
        raise WxError(47003, "argument invalid! miniprogram_state or lang")
    record = _subscribe_message(call, page=body.get("page"), miniprogram_state=body.get("miniprogram_state"))
    return {"msgid": record["id"]}


@endpoint("/cgi-bin/message/custom/send")
def custom_send(call: Call):
    body = call.body()
    touser = _text(body, "touser", 40003)
    msgtype = _msgtype(body, CUSTOM_TYPES)
    if call.state.app_kind(call.appid) == "oa" and not call.state.seen(touser):
        raise WxError(43004)
    call.record(touser=touser, msgtype=msgtype)
    return {}


def _mass_result(call: Call, recipients: list[str], msgtype: str) -> dict:
    entry = call.record(touser=recipients, msgtype=msgtype)
    return {"errmsg": "send job submission success", "msg_id": entry["id"], "msg_data_id": 2_000_000_000 + entry["id"]}


@endpoint("/cgi-bin/message/mass/sendall", app="oa")
def mass_sendall(call: Call):
    body = call.body()
    msgtype = _msgtype(body, MASS_TYPES)
    target = body.get("filter")
    if not isinstance(target, dict):
        raise WxError(47001, "data format error: filter is missing")
    st = call.state
    with st.lock:
        if target.get("is_to_all"):
            recipients = [o for o in st.followers if o not in st.unsubscribed]
        else:
            tag_id = _int(target.get("tag_id"), 45159)
            if tag_id not in st.tags:
                raise WxError(45159)
            recipients = [o for o, tags in st.user_tags.items() if tag_id in tags and o not in st.unsubscribed]
    return _mass_result(call, recipients, msgtype)


@endpoint("/cgi-bin/message/mass/send", app="oa")
def mass_send(call: Call):
    body = call.body()
    msgtype = _msgtype(body, MASS_TYPES)
    touser = body.get("touser")
    if not isinstance(touser, list) or len(touser) < 2:
        raise WxError(40130)
    if len(touser) > 10_000 or not all(isinstance(o, str) and o for o in touser):
        raise WxError(40032)
    return _mass_result(call, list(touser), msgtype)


# -- users and tags ----------------------------------------------------------------------------

def _user_info(st: SimState, openid: str) -> dict:
    if not st.seen(openid):
        return {"subscribe": 0, "openid": openid}
    with st.lock:
        tags = sorted(st.user_tags.get(openid, ()))
        since = st.followers.get(openid, 0)
    return {
        "subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": since,
        "unionid": unionid_for_oa_openid(openid), "remark": "", "groupid": 0, "tagid_list": tags,
        "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": "",
        # WeChat stopped returning real nicknames and avatars in 2021.
        "nickname": "", "headimgurl": "",
    }


def _page(openids: list[str], next_openid: str | None, size: int = 10_000) -> dict:
    start = openids.index(next_openid) + 1 if next_openid and next_openid in openids else 0
    page = openids[start:start + size]
    out: dict = {"count": len(page), "next_openid": page[-1] if page else ""}
    if page:
        out["data"] = {"openid": page}
    return out


@endpoint("/cgi-bin/user/info", methods=("GET",), app="oa", bare=True)
def user_info(call: Call):
    openid = request.args.get("openid")
    if not openid:
        raise WxError(40003)
    return _user_info(call.state, openid)


@endpoint("/cgi-bin/user/info/batchget", app="oa", bare=True)
def user_info_batch(call: Call):
    wanted = call.body().get("user_list")
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= 100:
        raise WxError(40032)
    openids = [_text(u if isinstance(u, dict) else {}, "openid", 40003) for u in wanted]
    return {"user_info_list": [_user_info(call.state, o) for o in openids]}


@endpoint("/cgi-bin/user/get", methods=("GET",), app="oa", bare=True)
def user_list(call: Call):
    st = call.state
    with st.lock:
        openids = [o for o in st.followers if o not in st.unsubscribed]
    return {"total": len(openids), **_page(openids, request.args.get("next_openid"))}


def _tag(body: dict) -> dict:
    tag = body.get("tag")
    if not isinstance(tag, dict):
        raise WxError(47001, "data format error: tag is missing")
    return tag


def _tag_name(st: SimState, tag: dict, own_id: int | None = None) -> str:
    name = tag.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WxError(45157)
    if len(name) > 30:
        raise WxError(45158)
    if any(n == name and i != own_id for i, n in st.tags.items()):
        raise WxError(45157)
    return name


def _known_tag(st: SimState, value, system_ok: bool = False) -> int:
    tag_id = _int(value, 45159)
    if tag_id in (0, 1, 2) and not system_ok:
        raise WxError(45058)
    if tag_id not in st.tags:
        raise WxError(45159)
    return tag_id


@endpoint("/cgi-bin/tags/create", app="oa", bare=True)
def tags_create(call: Call):
    st, tag = call.state, _tag(call.body())
    with st.lock:
        name = _tag_name(st, tag)
        if len(st.tags) >= 100:
            raise WxError(45056)
        tag_id = next(st._tag_ids)
        st.tags[tag_id] = name
    return {"tag": {"id": tag_id, "name": name}}


@endpoint("/cgi-bin/tags/get", methods=("GET",), app="oa", bare=True)
def tags_get(call: Call):
    st = call.state
    with st.lock:
        counts = {i: 0 for i in st.tags}
        for tags in st.user_tags.values():
            for i in tags:
                counts[i] = counts.get(i, 0) + 1
        return {"tags": [{"id": i, "name": n, "count": counts.get(i, 0)} for i, n in st.tags.items()]}


@endpoint("/cgi-bin/tags/update", app="oa")
def tags_update(call: Call):
    st, tag = call.state, _tag(call.body())
    with st.lock:
        tag_id = _known_tag(st, tag.get("id"))
        st.tags[tag_id] = _tag_name(st, tag, own_id=tag_id)
    return {}


@endpoint("/cgi-bin/tags/delete", app="oa")
def tags_delete(call: Call):
    st, tag = call.state, _tag(call.body())
    with st.lock:
        tag_id = _known_tag(st, tag.get("id"))
        del st.tags[tag_id]
        for tags in st.user_tags.values():
            tags.discard(tag_id)
    return {}


def _tagging(call: Call, add: bool) -> dict:
    st, body = call.state, call.body()
    openids = body.get("openid_list")
    if not isinstance(openids, list) or not 1 <= len(openids) <= 50:
        raise WxError(40032)
    if not all(isinstance(o, str) and o for o in openids):
        raise WxError(40003)
    with st.lock:
        tag_id = _known_tag(st, body.get("tagid"), system_ok=True)
        if add and any(len(st.user_tags.get(o, ())) >= 20 and tag_id not in st.user_tags[o] for o in openids):
            raise WxError(45059)
        for openid in openids:
            tags = st.user_tags.setdefault(openid, set())
            tags.add(tag_id) if add else tags.discard(tag_id)
            st.followers.setdefault(openid, int(time.time()))
    return {}


@endpoint("/cgi-bin/tags/members/batchtagging", app="oa")
def tags_batchtagging(call: Call):
    return _tagging(call, add=True)


@endpoint("/cgi-bin/tags/members/batchuntagging", app="oa")
def tags_batchuntagging(call: Call):
    return _tagging(call, add=False)


@endpoint("/cgi-bin/tags/getidlist", app="oa", bare=True)
def tags_of_user(call: Call):
    openid = _text(call.body(), "openid", 40003)
    with call.state.lock:
        return {"tagid_list": sorted(call.state.user_tags.get(openid, ()))}


@endpoint("/cgi-bin/user/tag/get", app="oa", bare=True)
def users_of_tag(call: Call):
    st, body = call.state, call.body()
    with st.lock:
        tag_id = _known_tag(st, body.get("tagid"), system_ok=True)
        openids = [o for o, tags in st.user_tags.items() if tag_id in tags]
    return _page(openids, body.get("next_openid"))


# -- custom menu -------------------------------------------------------------------------------

@endpoint("/cgi-bin/menu/create", app="oa")
def menu_create(call: Call):
    menu = call.body()
    check_menu(menu)
    with call.state.lock:
        call.state.menu = {"button": menu["button"]}
    return {}


@endpoint("/cgi-bin/menu/get", methods=("GET",), app="oa", bare=True)
def menu_get(call: Call):
    menu = call.state.menu
    if menu is None:
        raise WxError(46003)
    return {"menu": menu}


@endpoint("/cgi-bin/get_current_selfmenu_info", methods=("GET",), app="oa", bare=True)
def menu_selfmenu_info(call: Call):
    menu = call.state.menu
    if menu is None:
        return {"is_menu_open": 0}
    return {"is_menu_open": 1, "selfmenu_info": selfmenu_info(menu)}


@endpoint("/cgi-bin/menu/delete", methods=("GET", "POST"), app="oa")
def menu_delete(call: Call):
    with call.state.lock:
        call.state.menu = None
    return {}


# -- QR codes and mini-program codes -----------------------------------------------------------

QR_ACTIONS = {
    "QR_SCENE": (False, "scene_id"), "QR_STR_SCENE": (False, "scene_str"),
    "QR_LIMIT_SCENE": (True, "scene_id"), "QR_LIMIT_STR_SCENE": (True, "scene_str"),
}
MAX_QR_EXPIRE = 30 * 24 * 3600
WXACODE_SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")


@endpoint("/cgi-bin/qrcode/create", app="oa", bare=True)
def qrcode_create(call: Call):
    body = call.body()
    action = body.get("action_name")
    if action not in QR_ACTIONS:
        raise WxError(40052)
    permanent, field = QR_ACTIONS[action]
    scene = ((body.get("action_info") or {}).get("scene") or {}).get(field)
    if field == "scene_id":
        scene = _int(scene, 40053)
        if not 0 < scene <= (100_000 if permanent else 2**32 - 1):
            raise WxError(40053)
    elif not isinstance(scene, str) or not 1 <= len(scene) <= 64:
        raise WxError(40053)
    expire = None if permanent else min(max(_int(body.get("expire_seconds") or 60, 47001), 60), MAX_QR_EXPIRE)
    ticket = "gQ" + secrets.token_urlsafe(36)
    info = {"ticket": ticket, "url": "http://weixin.qq.com/q/" + secrets.token_urlsafe(18)}
    if expire:
        info["expire_seconds"] = expire
    with call.state.lock:
        call.state.qrcodes[ticket] = {
            **info, "action_name": action, "scene": scene,
            "expire_at": time.time() + expire if expire else None, "created_at": time.time(),
        }
    return info


@endpoint("/cgi-bin/showqrcode", methods=("GET",), token=False)
def qrcode_show(call: Call):
    with call.state.lock:
        qrcode = call.state.qrcodes.get(request.args.get("ticket", ""))
    if qrcode is None or (qrcode["expire_at"] and qrcode["expire_at"] < time.time()):
        raise WxError(40097, "invalid ticket", status=404)
    return png_response(qrcode["url"])


@endpoint("/wxa/getwxacodeunlimit", app="mp")
def wxacode_unlimit(call: Call):
    body = call.body()
    scene = body.get("scene")
    if not isinstance(scene, str) or not WXACODE_SCENE.match(scene):
        raise WxError(40169)
    page = body.get("page") or ""
    if not isinstance(page, str) or page.startswith("/"):
        raise WxError(41030)
    return png_response(f"wxacode:{page}?scene={scene}")


@endpoint("/wxa/msg_sec_check", app="mp")
def msg_sec_check(call: Call):
    body = call.body()
    content = body.get("content")
    if not isinstance(content, str):
        raise WxError(47001, "data format error: content is missing")
    suggest, label, word = sec_check(content)
    if body.get("version") not in (2, "2"):  # version 1: pass or 87014
        if suggest != "pass":
            raise WxError(87014)
        return {}
    _text(body, "openid", 40003)
    if body.get("scene") not in (1, 2, 3, 4):
        raise WxError(40097, "invalid args: scene")
    verdict = {"errcode": 0, "suggest": suggest, "label": label}
    detail = [{"strategy": "content_model", **verdict, "prob": 90 if word else 0}]
    if word:
        detail.append({"strategy": "keyword", **verdict, "level": 20, "keyword": word})
    return {"result": {"suggest": suggest, "label": label}, "detail": detail, "trace_id": secrets.token_hex(12)}


# -- WeCom group bot ---------------------------------------------------------------------------

WEBHOOK_TYPES = frozenset({"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"})
WEBHOOK_CONTENT_LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}


@endpoint("/cgi-bin/webhook/send", token=False)
def webhook_send(call: Call):
    key = request.args.get("key", "")
    if not key:
        raise WxError(93000)
    body = call.body()
    msgtype = body.get("msgtype")
    if msgtype not in WEBHOOK_TYPES:
        raise WxError(40008)
    section = body.get(msgtype)
    if not isinstance(section, dict):
        raise WxError(47001, f"data format error: {msgtype} is missing")
    limit = WEBHOOK_CONTENT_LIMITS.get(msgtype)
    if limit:
        content = section.get("content")
        if not isinstance(content, str) or not content:
            raise WxError(44004)
        if len(content.encode()) > limit:
            raise WxError(40058, f"{msgtype}.content exceed max length {limit}")
    call.state.webhook_admit(key)
    call.state.record(call.api, None, body, webhook_key=key, msgtype=msgtype)
    return {}
