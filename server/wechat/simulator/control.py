"""``/sim``: look inside the simulator and steer it (recorded messages, faults, settings, users)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from markupsafe import escape

from .api import state
from .identity import identities
from .state import RUNTIME_SETTINGS

bp = Blueprint("sim_control", __name__, url_prefix="/sim")


def _body() -> dict:
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else {}


def _bad(message: str):
    return jsonify({"error": message}), 400


@bp.get("/messages")
def list_messages():
    args = request.args
    since = args.get("since_id", type=int)
    found = state().messages(touser=args.get("touser"), api=args.get("api"), since_id=since)
    return jsonify({"messages": found})


@bp.delete("/messages")
def clear_messages():
    state().clear_messages()
    return jsonify({"ok": True})


@bp.get("/stats")
def stats():
    return jsonify(state().stats())


@bp.post("/reset")
def reset():
    state().reset()
    return jsonify({"ok": True})


@bp.post("/tokens/expire")
def expire_tokens():
    return jsonify({"ok": True, "expired": state().expire_tokens()})


@bp.route("/config", methods=["GET", "POST"])
def config():
    if request.method == "GET":
        return jsonify(state().settings())
    body = _body()
    unknown = sorted(set(body) - set(RUNTIME_SETTINGS))
    if unknown:
        return _bad(f"unknown settings: {', '.join(unknown)}")
    try:
        return jsonify(state().configure(**body))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    st = state()
    if request.method == "DELETE":
        st.clear_faults()
    elif request.method == "POST":
        body = _body()
        allowed = {"api", "errcode", "count", "latency_ms", "http_status"}
        try:
            st.add_fault(**{k: v for k, v in body.items() if k in allowed})
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
    return jsonify({"faults": st.list_faults()})


@bp.post("/consents")
def consents():
    body = _body()
    if not body.get("openid") or not body.get("template_id"):
        return _bad("openid and template_id are required")
    try:
        state().set_consent(body["openid"], body["template_id"], int(body.get("count", 1)))
    except (TypeError, ValueError):
        return _bad("count must be an integer")
    return jsonify({"ok": True})


@bp.post("/users/<openid>/<action>")
def follow(openid: str, action: str):
    if action not in ("subscribe", "unsubscribe"):
        return _bad("action must be subscribe or unsubscribe")
    state().set_subscribed(openid, action == "subscribe")
    return jsonify({"ok": True, "openid": openid, "subscribe": int(action == "subscribe")})


@bp.get("/identities/<mp_openid>")
def identity(mp_openid: str):
    return jsonify(identities(mp_openid))


@bp.route("/webhooks/<key>/fail", methods=["POST", "DELETE"])
def webhook_failure(key: str):
    errcode = None if request.method == "DELETE" else _body().get("errcode", 93000)
    try:
        state().set_webhook_failure(key, errcode)
    except (TypeError, ValueError):
        return _bad("errcode must be an integer")
    return jsonify({"ok": True, "key": key, "errcode": errcode})


@bp.get("/qrcodes")
def qrcodes():
    st = state()
    with st.lock:
        return jsonify({"qrcodes": list(st.qrcodes.values())})


@bp.get("/qrcodes/<ticket>")
def qrcode(ticket: str):
    st = state()
    with st.lock:
        found = st.qrcodes.get(ticket)
    return (jsonify(found), 200) if found else (jsonify({"error": "unknown ticket"}), 404)


# -- landing page ------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>微信模拟器 WeChat simulator</title>
<style>
body{{font:14px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#ededed;color:#111}}
header{{background:#07c160;color:#fff;padding:14px 24px}}h1{{margin:0;font-size:20px}}
main{{padding:16px 24px;max-width:1100px}}section{{background:#fff;border-radius:8px;padding:12px 16px;margin:12px 0}}
table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}}
code{{background:#f6f6f6;padding:1px 4px;border-radius:3px}}a{{color:#576b95}}small{{color:#888}}
</style></head><body>
<header><h1>微信模拟器 · WeChat simulator</h1><small>api.weixin.qq.com 与企业微信群机器人的本地替身 ·
a local stand-in for WeChat's servers and the WeCom group bot</small></header>
<main>
<section><h2>模拟手机 Phone</h2><p><a href="/sim/phone">打开模拟手机 /sim/phone</a> ·
<small>以演示职工身份向公众号发消息、点菜单、扫码、关注（明文/兼容/安全模式）</small></p></section>
<section><h2>应用 Apps</h2><table>
<tr><th>公众号 Official Account</th><td><code>{oa_appid}</code></td></tr>
<tr><th>小程序 Mini-program</th><td><code>{mp_appid}</code></td></tr>
<tr><th>回调 Callback</th><td><code>{callback}</code></td></tr>
<tr><th>设置 Settings</th><td><code>{settings}</code></td></tr>
<tr><th>已发令牌 Tokens issued</th><td><code>{tokens}</code></td></tr>
<tr><th>待触发故障 Pending faults</th><td>{faults}</td></tr></table></section>
<section><h2>已记录消息 Recorded messages ({count})</h2>
<p><a href="/sim/messages">/sim/messages</a> (JSON; <code>?touser=</code> <code>?api=</code> <code>?since_id=</code>) ·
<a href="/sim/stats">/sim/stats</a> · <a href="/sim/faults">/sim/faults</a> ·
<a href="/sim/qrcodes">/sim/qrcodes</a></p>
<table><tr><th>#</th><th>接口 API</th><th>接收者 To</th><th>类型/模板 Type</th><th>时间 At</th></tr>{rows}</table>
{more}</section>
</main></body></html>"""


@bp.get("/")
def landing():
    st = state()
    recorded = st.messages()
    stats = st.stats()
    rows = "".join(
        f"<tr><td>{m['id']}</td><td>{escape(m['api'])}</td>"
        f"<td>{escape(str(m.get('touser') or m.get('webhook_key') or '')[:120])}</td>"
        f"<td>{escape(m.get('template_id') or m.get('msgtype') or '')}</td><td>{escape(m['at'])}</td></tr>"
        for m in reversed(recorded[-50:])
    ) or '<tr><td colspan="5">还没有消息 No messages yet</td></tr>'
    more = f"<p><small>仅显示最近 50 条 Showing the latest 50 of {len(recorded)}</small></p>" if len(recorded) > 50 else ""
    html = _PAGE.format(
        oa_appid=escape(st.config.oa_appid), mp_appid=escape(st.config.mp_appid),
        callback=escape(st.config.callback_url or "-"), settings=escape(str(st.settings())),
        tokens=escape(str(stats["tokens_issued"])), faults=stats["faults_pending"],
        count=len(recorded), rows=rows, more=more,
    )
    return Response(html, content_type="text/html; charset=utf-8")
