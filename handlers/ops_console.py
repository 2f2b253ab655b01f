"""The operators' queue console: rq-dashboard at /admin/rq, behind a staff login.

rq-dashboard (queues, workers, failed jobs with their tracebacks, requeue and delete) is a Flask
blueprint without authentication of its own.  A browser cannot send the staff API's bearer token on
a page load, so the console has its own small login page: it signs the staff member in with the
same service as ``POST /api/admin/v1/auth/login`` (same rate limit, same revocable token) and keeps
the token in a cookie that only this path sees (HttpOnly, SameSite=Strict, Secure over HTTPS).
Every request under /admin/rq checks the token and that its holder is an operator (an admin of the
top-level organisation: queues show every organisation's jobs); a state-changing request must also
come from this site (its Origin), so another site cannot drive the buttons.

Delivery statistics per channel stay in ``GET /api/admin/v1/ops/deliveries``; the console links to
the JSON views.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, render_template_string, request, url_for

from server.errors import ServiceError
from server.extensions import db
from server.models import Staff
from server.services import auth

PREFIX = "/admin/rq"
COOKIE = "unionhub_ops"

blp = Blueprint("ops_console", __name__, url_prefix=PREFIX)

LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>任务队列 · 运维登录</title>
<style>
 body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; background: #f4f5f7; margin: 0; }
 main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 8px;
        box-shadow: 0 1px 4px rgba(0,0,0,.12); }
 h1 { font-size: 1.25rem; margin: 0 0 1.25rem; }
 label { display: block; margin: .75rem 0 .25rem; }
 input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
 button { margin-top: 1.25rem; width: 100%; padding: .6rem; font-size: 1rem; background: #c8161d; color: #fff;
          border: 0; border-radius: 4px; cursor: pointer; }
 .error { color: #b00020; margin: 0 0 1rem; }
 .hint { color: #666; font-size: .85rem; margin-top: 1rem; }
</style>
</head>
<body>
<main>
 <h1>任务队列控制台</h1>
 {% if error %}<p class="error" role="alert" data-code="{{ code }}">{{ error }}</p>{% endif %}
 <form method="post" action="{{ url_for('ops_console.login') }}">
  <label for="username">用户名</label>
  <input id="username" name="username" autocomplete="username" required value="{{ username }}">
  <label for="password">密码</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">登录</button>
 </form>
 <p class="hint">仅限市总工会管理员。登录后可查看队列长度、失败任务和工作进程；发送统计见
 <code>/api/admin/v1/ops/deliveries</code>。</p>
</main>
</body>
</html>
"""


def _login_page(error: str | None = None, code: str | None = None, status: int = 200) -> Response:
    body = render_template_string(LOGIN_PAGE, error=error, code=code, username=request.form.get("username", ""))
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _secure() -> bool:
    return request.is_secure or current_app.extensions["unionhub"]["config"].is_production


@blp.get("/login")
def login_form():
    return _login_page()


@blp.post("/login")
def login():
    from handlers.common import client_ip

    if not _same_origin():
        return _login_page("请求来源不正确，请刷新页面后重试", "bad_origin", 403)
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if not username.strip() or not password:
        return _login_page("请输入用户名和密码", "validation_error", 400)
    try:
        result = auth.login_staff(username, password, client_ip())
        auth.require_operator(db.get(Staff, result["staff"]["id"]))
    except ServiceError as exc:
        # An error answer rolls the unit of work back: the token issued above never becomes valid.
        return _login_page(exc.message, exc.code, exc.status)
    response = redirect(url_for("rq_dashboard.queues_overview"))
    response.set_cookie(COOKIE, result["token"], max_age=result["expires_in"], path=PREFIX, httponly=True,
                        samesite="Strict", secure=_secure())
    return response


@blp.post("/logout")
def logout():
    if _same_origin():
        auth.revoke_token(auth.STAFF, request.cookies.get(COOKIE))
    response = redirect(url_for("ops_console.login_form"))
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _same_origin() -> bool:
    """A state-changing request comes from this site: its Origin (or, without one, its Referer) is our host."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True  # not a browser's cross-site request (browsers send Origin on cross-site POSTs)
    return urlsplit(origin).netloc == request.host


def _guard():
    """Before every rq-dashboard request: an operator's cookie, and for a change, this site's origin."""
    try:
        auth.require_operator(auth.authenticate_staff(request.cookies.get(COOKIE)))
    except ServiceError as exc:
        if request.method == "GET" and request.accept_mimetypes.accept_html and not request.path.endswith(".json"):
            return redirect(url_for("ops_console.login_form"))
        return Response(exc.message, status=exc.status, mimetype="text/plain")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin():
        return Response("请求来源不正确", status=403, mimetype="text/plain")
    return None


def register(app: Flask) -> None:
    """Mount rq-dashboard and the login page under /admin/rq."""
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    config = app.extensions["unionhub"]["config"]
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", config.REDIS_URL)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    setup_rq_connection(app)
    app.register_blueprint(blp)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    # Only rq-dashboard's requests are checked (nothing on other paths), and before its own hook, which
    # opens Redis connections for the instance in the URL.
    app.before_request_funcs.setdefault(rq_dashboard.blueprint.name, []).insert(0, _guard)
