"""``/sim/phone``: a phone in a browser that talks to the app's /wechat callback like WeChat would.

A person picks a demo worker (or types any OA openid), chooses the
callback mode (plaintext, compatible, safe), then types messages, taps the
custom menu, "scans" a parametric QR code, follows or unfollows.  The page
calls ``POST /sim/phone/send``, which builds the push exactly as WeChat
does (:class:`~.push.PushSigner`: signed query string, AES in safe and
compatible mode), posts it to the app's callback URL, checks and decrypts
the answer and returns it as JSON.  Everything the app sends later
(customer-service, template and subscribe messages) is recorded by the
simulator's API endpoints; the page polls ``/sim/messages?touser=`` for it.

The simulator has no database: the demo workers offered are derived from
:func:`server.demo.demo_mp_openid` through :func:`.identity.identities`
(pure functions), and any other OA openid can be typed in.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from flask import Blueprint, jsonify, render_template, request

from .api import state
from .identity import identities
from .push import PushSigner, event_push, text_push

bp = Blueprint("sim_phone", __name__, url_prefix="/sim/phone", template_folder="templates")

#: How many demo workers the page offers.
DEMO_PEOPLE = 30
#: Seconds before a post to the callback gives up (WeChat itself waits 5 s, then retries).
CALLBACK_TIMEOUT = 10
MODES = ("plain", "compatible", "safe")
KINDS = ("text", "click", "view", "miniprogram", "scancode", "scan", "subscribe", "unsubscribe")
#: The Official Account's original id, as WeChat puts it in ToUserName.
OA_ORIGINAL_ID = "gh_unionhub"
MAX_TEXT = 2000

#: The account's menu file (``unionhub wechat-menu`` creates it); read only for its button layout.
MENU_FILE = Path(__file__).resolve().parent.parent / "menu.json"

#: Used when neither the simulator state (``/cgi-bin/menu/create``) nor menu.json has a menu.
DEFAULT_MENU = {
    "button": [
        {"name": "补助申请", "sub_button": [
            {"type": "click", "name": "补助政策", "key": "MENU_SUBSIDY"},
            {"type": "click", "name": "申请进度", "key": "MENU_PROGRESS"},
        ]},
        {"name": "技能竞赛", "sub_button": [
            {"type": "click", "name": "正在报名", "key": "MENU_COMPETITION"},
            {"type": "click", "name": "我的报名", "key": "MENU_MY_ENTRIES"},
        ]},
        {"name": "职工服务", "sub_button": [
            {"type": "click", "name": "会员绑定", "key": "MENU_BIND"},
            {"type": "click", "name": "政策解读", "key": "MENU_POLICY"},
            {"type": "click", "name": "服务热线", "key": "MENU_HOTLINE"},
            {"type": "click", "name": "使用帮助", "key": "MENU_HELP"},
        ]},
    ]
}


class SendError(Exception):
    """A refusal of /sim/phone/send: a stable code, a Chinese message, an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


def _error(exc: SendError):
    return jsonify({"status": "error", "error": exc.code, "message": exc.message, **exc.extra}), exc.status


# -- the page and what it reads -----------------------------------------------------------------


@bp.get("")
@bp.get("/")
def page():
    st = state()
    return render_template(
        "phone.html",
        oa_appid=st.config.oa_appid,
        callback_url=st.config.callback_url,
        modes=MODES,
    )


@bp.get("/people")
def people():
    """The demo workers (演示职工1..N) with their OA openids; the demo data gives them these identities."""
    return jsonify({"people": demo_people()})


def demo_people(count: int = DEMO_PEOPLE) -> list[dict]:
    from server.demo import demo_mp_openid  # pure; imported late (server.demo imports this package)

    return [
        {"label": f"演示职工{i + 1}", "index": i, **identities(demo_mp_openid(i))}
        for i in range(count)
    ]


@bp.get("/menu")
def menu():
    """The menu the phone shows: the one created through /cgi-bin/menu/create, else the account's file."""
    st = state()
    with st.lock:
        created = json.loads(json.dumps(st.menu)) if st.menu else None
    if created:
        return jsonify({"source": "created", "menu": created})
    try:
        return jsonify({"source": "file", "menu": {"button": json.loads(MENU_FILE.read_text("utf-8"))["button"]}})
    except (OSError, ValueError, KeyError, TypeError):
        return jsonify({"source": "default", "menu": DEFAULT_MENU})


@bp.get("/qrcodes")
def qrcodes():
    """Scenes of the parametric QR codes the app created (offered as suggestions for 扫一扫)."""
    st = state()
    with st.lock:
        found = [{"scene": str(q["scene"]), "ticket": q["ticket"], "action_name": q["action_name"]}
                 for q in st.qrcodes.values()]
    return jsonify({"qrcodes": found[-50:]})


# -- sending a push ------------------------------------------------------------------------------


@bp.post("/send")
def send():
    try:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise SendError("bad_request", "请求体须为 JSON 对象")
        openid = str(body.get("openid") or "").strip()
        if not openid or len(openid) > 128:
            raise SendError("bad_openid", "请选择演示职工或填写公众号 openid")
        mode = str(body.get("mode") or "safe")
        if mode == "raw":
            mode = "plain"
        if mode not in MODES:
            raise SendError("bad_mode", "模式须为 plain（明文）、compatible（兼容）或 safe（安全）")
        kind = str(body.get("kind") or "")
        if kind not in KINDS:
            raise SendError("bad_kind", f"kind 须为 {' | '.join(KINDS)}")
        xml = build_push(openid, kind, body)
        return jsonify(deliver(openid, kind, mode, xml))
    except SendError as exc:
        return _error(exc)


def build_push(openid: str, kind: str, body: dict) -> str:
    """The plaintext push XML WeChat would send for what the person did on the phone."""
    st = state()
    if kind == "text":
        content = str(body.get("content") or "")
        if not content.strip():
            raise SendError("empty_content", "消息内容不能为空")
        if len(content) > MAX_TEXT:
            raise SendError("content_too_long", f"消息不能超过 {MAX_TEXT} 个字")
        return text_push(openid, content, to=OA_ORIGINAL_ID, msg_id=_msg_id())
    if kind in ("click", "view", "miniprogram"):
        key = str(body.get("key") or "").strip()
        if not key:
            raise SendError("empty_key", "菜单 key（或链接、小程序页面）不能为空")
        event = {"click": "CLICK", "view": "VIEW", "miniprogram": "view_miniprogram"}[kind]
        return event_push(openid, event, key, to=OA_ORIGINAL_ID)
    if kind == "scancode":  # a scancode_push / scancode_waitmsg menu button: WeChat pushes the scan result
        key, result = str(body.get("key") or "").strip(), str(body.get("scene") or "").strip()
        event = "scancode_waitmsg" if body.get("event") == "scancode_waitmsg" else "scancode_push"
        if not key or not result:
            raise SendError("empty_scene", "扫码结果不能为空")
        return event_push(openid, event, key, to=OA_ORIGINAL_ID,
                          ScanCodeInfo={"ScanType": "qrcode", "ScanResult": result})
    if kind == "unsubscribe":
        st.set_subscribed(openid, False)
        return event_push(openid, "unsubscribe", "", to=OA_ORIGINAL_ID)

    scene = str(body.get("scene") or "").strip()
    follow = kind == "subscribe" or bool(body.get("follow"))
    if kind == "scan" and not scene:
        raise SendError("empty_scene", "请填写二维码场景值，例如 comp:1")
    if len(scene) > 64:
        raise SendError("bad_scene", "场景值不能超过 64 个字符")
    if follow:
        st.set_subscribed(openid, True)
    if not scene:
        return event_push(openid, "subscribe", "", to=OA_ORIGINAL_ID)
    ticket = _ticket_for(scene)
    if follow:  # scanning a parametric code before following: a subscribe with the scene
        return event_push(openid, "subscribe", "qrscene_" + scene, to=OA_ORIGINAL_ID, Ticket=ticket)
    return event_push(openid, "SCAN", scene, to=OA_ORIGINAL_ID, Ticket=ticket)


def _msg_id() -> int:
    return int(time.time() * 1000) * 1000 + secrets.randbelow(1000)


def _ticket_for(scene: str) -> str:
    st = state()
    with st.lock:
        for qrcode in st.qrcodes.values():
            if str(qrcode["scene"]) == scene:
                return qrcode["ticket"]
    return "gQsim" + secrets.token_urlsafe(24)


def deliver(openid: str, kind: str, mode: str, xml: str) -> dict:
    """Sign (and encrypt) the push, post it to the callback, check and open the answer."""
    cfg = state().config
    if not cfg.callback_url:
        raise SendError("no_callback_url", "模拟器未配置回调地址（callback_url），无法推送消息。"
                        "请用 `unionhub simulator --callback-url` 或 SIMULATOR_CALLBACK_URL 指定应用的 /wechat 地址。", 503)
    signer = PushSigner(cfg.oa_token, cfg.oa_aes_key, cfg.oa_appid)
    push = signer.sign(xml, mode)
    started = time.perf_counter()
    try:
        response = requests.post(cfg.callback_url, params=push.query, data=push.body,
                                 headers={"Content-Type": "text/xml; charset=utf-8", "User-Agent": "Mozilla/4.0"},
                                 timeout=CALLBACK_TIMEOUT)
    except requests.Timeout:
        raise SendError("callback_timeout", f"应用在 {CALLBACK_TIMEOUT} 秒内没有应答（{cfg.callback_url}）", 504,
                        callback_url=cfg.callback_url) from None
    except requests.RequestException as exc:
        raise SendError("callback_unreachable", f"无法连接应用的回调地址 {cfg.callback_url}：{type(exc).__name__}", 502,
                        callback_url=cfg.callback_url) from None
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    result = {"status": response.status_code, "openid": openid, "kind": kind, "mode": mode,
              "elapsed_ms": elapsed_ms, "push_xml": xml, "reply": None, "raw_xml": None}
    if response.status_code != 200:
        result["error"] = "callback_status"
        result["message"] = f"回调返回 HTTP {response.status_code}"
        result["body"] = response.text[:500]
        return result
    try:
        plain = signer.open_reply(push, response.content)
    except Exception as exc:  # a reply WeChat would refuse: bad signature, appid or ciphertext
        result["error"] = "reply_undecryptable"
        result["message"] = f"无法校验或解密应用的应答：{type(exc).__name__}"
        result["body"] = response.text[:500]
        return result
    result["raw_xml"] = plain
    result["reply"] = parse_reply(plain)
    if result["reply"]["type"] == "invalid":
        result["error"] = "reply_invalid"
        result["message"] = "应用的应答不是合法的被动回复 XML"
    return result


def parse_reply(plain: str) -> dict:
    """A passive reply as the phone shows it: success (nothing), text, news or another type."""
    text = plain.strip()
    if text in ("", "success"):
        return {"type": "success"}
    try:
        root = safe_fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SyntaxError, ValueError):
        return {"type": "invalid"}
    if root.tag != "xml":
        return {"type": "invalid"}
    msg_type = (root.findtext("MsgType") or "").strip().lower()
    if msg_type == "text":
        return {"type": "text", "content": root.findtext("Content") or ""}
    if msg_type == "news":
        articles = [
            {
                "title": item.findtext("Title") or "",
                "description": item.findtext("Description") or "",
                "url": item.findtext("Url") or "",
                "image": item.findtext("PicUrl") or "",
            }
            for item in root.iter("item")
        ]
        return {"type": "news", "articles": articles}
    return {"type": msg_type or "invalid"}


__all__ = ["bp", "build_push", "demo_people", "deliver", "parse_reply"]
