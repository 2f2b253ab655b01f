"""Liveness (/healthz: the process answers) and readiness (/readyz: database and Redis reachable)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from server.extensions import db, get_redis

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except (RedisError, OSError) as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ready else "unavailable", **checks}
    if not ready:
        body.update(code="unavailable", message="服务暂时不可用，请稍后再试")
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response
