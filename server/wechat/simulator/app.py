"""``create_simulator_app``: the Flask app that stands in for WeChat's servers.

Blueprints: :mod:`.api` (the WeChat endpoints under /cgi-bin, /sns, /wxa)
and :mod:`.control` (``/sim``).  More views (a phone page ...) are added
by appending their blueprint to ``_BLUEPRINTS``.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from . import api, control, phone
from .state import SimConfig, SimState, WxError

#: Blueprints every simulator app gets; append here to add pages.
_BLUEPRINTS = [api.bp, control.bp, phone.bp]


def create_simulator_app(oa_appid: str, oa_secret: str, mp_appid: str, mp_secret: str, oa_token: str,
                         oa_aes_key: str, callback_url: str | None = None, latency_ms: int = 0) -> Flask:
    """A fresh simulator; its state is ``app.extensions["simulator"]`` (a :class:`SimState`)."""
    app = Flask("server.wechat.simulator")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["simulator"] = SimState(SimConfig(
        oa_appid=oa_appid, oa_secret=oa_secret, mp_appid=mp_appid, mp_secret=mp_secret,
        oa_token=oa_token, oa_aes_key=oa_aes_key, callback_url=callback_url, latency_ms=int(latency_ms),
    ))
    for blueprint in _BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(exc: HTTPException):
    """Unknown paths answer 40066 (with HTTP 404); a wrong method answers 43001/43002 like WeChat."""
    if exc.code == 405:
        return api.wx_error(WxError(43002 if request.method == "GET" else 43001))
    if exc.code == 404:
        return api.wx_error(WxError(40066, status=404))
    return api.wx_error(WxError(-1, exc.description or exc.name, status=exc.code or 500))
