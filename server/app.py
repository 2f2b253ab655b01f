"""The application factory: one ``create_app`` for web, worker, CLI and tests."""

from __future__ import annotations

import logging
import sys
import time

from flask import Flask, g, request
from flask.sessions import SessionInterface
from flask_smorest import Api
from redis import Redis
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .config import Config
from .errors import register_error_handlers, unexpected_response
from .extensions import SessionFactory, db, handle_stale_connections, request_id
from .security import IdCipher, MaskingFilter

log = logging.getLogger("unionhub")


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_unionhub", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._unionhub = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(MaskingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)
    handle_stale_connections(engine)
    return engine


def make_redis(config: Config) -> Redis:
    url = config.REDIS_URL
    if not url:
        from .embedded import embedded_redis_url

        url = embedded_redis_url(config.INSTANCE_DIR)
        config.REDIS_URL = url
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def create_app(config: Config | dict | None = None) -> Flask:
    if config is None:
        config = Config.from_env()
    elif isinstance(config, dict):
        config = Config.from_env(**config)

    configure_logging(config.LOG_LEVEL)
    app = Flask("server", instance_path=str(config.INSTANCE_DIR), instance_relative_config=False)
    app.config.from_mapping(config.as_flask())
    app.config.update(
        MAX_CONTENT_LENGTH=config.UPLOAD_MAX_BYTES + 64 * 1024,
        API_TITLE="UnionHub API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "UnionHub: the mini-program API (/api/v1) and the staff API (/api/admin/v1) of the "
                    "city federation of trade unions. Errors always have the shape "
                    '{"code": "...", "message": "中文说明", "errors": {...}}. Money is integer fen (fields ending _fen).'
                )
            },
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                }
            },
        },
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.unionhub_config = config  # type: ignore[attr-defined]

    config.INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.DATABASE_URL)
    SessionFactory.configure(bind=engine)
    redis_client = make_redis(config)
    app.extensions["unionhub"] = {
        "config": config,
        "engine": engine,
        "redis": redis_client,
        "id_cipher": IdCipher(config.ID_ENCRYPTION_KEY),
    }

    api = Api(app)
    app.extensions["unionhub"]["api"] = api
    register_error_handlers(app)
    _register_unit_of_work(app)
    _register_blueprints(app, api)
    return app


class _NoCookieSessions(SessionInterface):
    """UnionHub keeps no state in Flask's cookie session (tokens are bearer tokens).

    Flask's default would build an itsdangerous signer and look for the cookie on every
    request; ``None`` gives Flask's null session, which refuses writes.
    """

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


def _register_unit_of_work(app: Flask) -> None:
    """One unit of work per request: commit once at the end, roll back on any error."""
    app.session_interface = _NoCookieSessions()

    @app.before_request
    def _start():
        g.request_started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def _finish(response):
        if not db.registry.has() or not db().in_transaction():
            pass  # no session, or nothing begun since the view committed (sign-up)
        elif response.status_code < 400:
            try:
                db.commit()
            except SQLAlchemyError as exc:
                db.rollback()
                response = unexpected_response(exc, f"commit of {request.method} {request.path}")
        else:
            db.rollback()
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.teardown_appcontext
    def _remove_session(exc):
        if exc is not None:
            db.rollback()
        db.remove()


def _register_blueprints(app: Flask, api: Api) -> None:
    from flask_swagger_ui import get_swaggerui_blueprint

    from handlers import register_handlers

    app.register_blueprint(
        get_swaggerui_blueprint("/api/docs", "/api/openapi.json", config={"app_name": "UnionHub API"}),
        name="api_docs",
    )
    register_handlers(app, api)
