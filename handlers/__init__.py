"""Thin entry points: the Official Account callback, the mini-program API, the staff API.

Each area module exposes its blueprints; ``register_handlers`` wires them
into an app.  Handlers parse, call services, and let the app's unit of work
commit; they never call each other.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_handlers(app: Flask, api: Api) -> None:
    from . import health, ops_console
    from .admin_api import blueprints as admin_blueprints
    from .api import blueprints as api_blueprints
    from .wechat import blueprints as wechat_blueprints
    from .wechat.callback import CallbackEndpoint

    app.register_blueprint(health.blp)
    for blp in wechat_blueprints():
        app.register_blueprint(blp)
    app.wsgi_app = CallbackEndpoint(app, app.wsgi_app)  # POST /wechat ahead of Flask's dispatch
    for blp in api_blueprints() + admin_blueprints():
        api.register_blueprint(blp)
    ops_console.register(app)  # rq-dashboard behind a staff login, at /admin/rq
