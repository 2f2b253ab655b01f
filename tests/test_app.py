"""The app factory, the error shape, health checks, the OpenAPI document and the unit of work."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from server.extensions import after_commit, db
from server.models import Organisation
from server.services.orgs import create_org


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    body = client.get("/readyz").get_json()
    assert body == {"status": "ok", "database": "ok", "redis": "ok"}


def test_readyz_reports_an_unreachable_redis(app, client, monkeypatch):
    from redis import Redis

    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions["unionhub"], "redis", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["redis"].startswith("error")
    assert body["code"] == "unavailable" and body["message"]


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "UnionHub API"
    assert "/api/v1/orgs" in spec["paths"]
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"swagger-ui" in page.data
    # The docs are served locally: no CDN.
    assert b"cdn" not in page.data.lower() and b"unpkg" not in page.data.lower()
    assert client.get("/api/docs/swagger-ui-bundle.js").status_code == 200


def test_openapi_bounds_are_numbers(client):
    """Generated clients and fuzzers (schemathesis) reject a document whose bounds are strings."""
    spec = client.get("/api/openapi.json").get_json()
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems") \
                        and not isinstance(value, (int, float)):
                    bad.append(f"{where}.{key}={value!r}")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(spec, "$")
    assert bad == []


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        ("get", "/api/v1/nowhere", 404, "not_found"),
        ("delete", "/api/v1/orgs", 405, "method_not_allowed"),
        ("get", "/api/v1/orgs?kind=planet", 422, "validation_error"),
    ],
)
def test_one_error_shape(client, method, path, status, code):
    response = getattr(client, method)(path)
    assert response.status_code == status
    body = response.get_json()
    assert body["code"] == code
    assert body["message"] and all(ord(ch) < 128 for ch in body["code"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), "message must be Chinese"


def test_validation_errors_name_the_field_in_chinese(client):
    body = client.get("/api/v1/orgs?kind=planet").get_json()
    assert "kind" in body["errors"]
    assert "取值不在允许范围内" in body["errors"]["kind"][0]
    # Query strings tolerate extra parameters (mini-programs add cache busters);
    # request bodies do not: the base Schema refuses unknown fields.
    assert client.get("/api/v1/orgs?_t=123").status_code == 200
    from marshmallow import ValidationError, fields

    from schemas import Schema

    class Probe(Schema):
        name = fields.String(required=True)

    try:
        Probe().load({"nmae": "x"})
    except ValidationError as err:
        assert err.messages == {"nmae": ["不支持的字段"], "name": ["此项为必填项"]}
    else:
        raise AssertionError("unknown field accepted")


def test_text_that_cannot_be_utf8_is_refused_with_the_field_named(client):
    """JSON may carry a lone surrogate (``"\\udc80"``): not storable, not echoable as UTF-8 (found by schemathesis)."""
    for body, field in (('{"username": "\\udc80", "password": "x"}', "username"),
                        ('{"username": "admin", "password": ["\\ud800a"]}', "password"),
                        ('{"\\udfff": 1, "username": "a", "password": "b"}', "?")):
        response = client.post("/api/admin/v1/auth/login", data=body, content_type="application/json")
        assert response.status_code == 422, body
        answer = response.get_json()
        assert answer["code"] == "validation_error" and answer["errors"][field] == ["包含无法识别的字符"]
    # A valid pair is one character (an emoji), not a surrogate: it goes on to the login's own answer.
    ok = client.post("/api/admin/v1/auth/login", data='{"username": "\\ud83d\\ude00", "password": "x"}',
                     content_type="application/json")
    assert ok.status_code == 401
    # A NUL, in a body or a query's filter, which PostgreSQL can neither store nor compare (found by schemathesis).
    nul = client.get("/api/v1/competitions?trade=%E7%84%8A%00%E5%B7%A5").get_json()
    assert nul["code"] == "validation_error" and nul["errors"] == {"trade": ["不能包含控制字符"]}
    assert client.get("/api/v1/orgs?parent_id=99999999999999999999").status_code == 422
    assert client.get(f"/api/v1/orgs?parent_id={2**31}").get_json()["code"] == "validation_error"


def test_json_bodies_no_parser_can_read_are_a_400(client):
    """Found by fuzzing: webargs answers only syntax errors; these went past it as a 500."""
    for body in ('{"username": ' + "9" * 5000 + ', "password": "x"}',  # over Python's 4,300-digit int limit
                 "[" * 5000 + "]" * 5000,  # the decoder's recursion
                 '{"username": "a", "password": ' + "[" * 40 + "]" * 40 + "}"):  # deeper than MAX_JSON_DEPTH
        response = client.post("/api/admin/v1/auth/login", data=body, content_type="application/json")
        assert response.status_code == 400, body[:40]
        assert response.get_json()["code"] == "bad_request"


def test_dates_outside_the_years_a_request_may_name_are_refused():
    """Found by fuzzing: year 1 or 9999 overflowed in a time zone conversion or a day added (500)."""
    from marshmallow import ValidationError, fields

    from schemas import Schema

    class Probe(Schema):
        at = fields.DateTime()
        on = fields.Date()
        days = fields.List(fields.Date())

    assert Probe().load({"at": "2026-03-01T09:00:00+08:00", "on": "1960-05-04"})["on"].year == 1960
    for body, field in (({"at": "9999-12-31T23:59:59-08:00"}, "at"), ({"on": "0001-01-01"}, "on"),
                        ({"days": ["2026-01-01", "2101-01-01"]}, "days")):
        try:
            Probe().load(body)
        except ValidationError as err:
            assert err.messages == {field: ["日期应在1900年至2100年之间"]}
        else:
            raise AssertionError(f"{body} accepted")


def test_orgs_list_filters(client):
    city = create_org(name="测试市总工会", kind="city")
    district = create_org(name="测试区总工会", kind="district", parent=city)
    create_org(name="测试机械厂工会", kind="enterprise", parent=district, employer_name="测试机械厂")
    db.commit()
    everything = client.get("/api/v1/orgs").get_json()
    assert [o["name"] for o in everything] == ["测试市总工会", "测试区总工会", "测试机械厂工会"]
    enterprises = client.get("/api/v1/orgs?kind=enterprise").get_json()
    assert len(enterprises) == 1 and enterprises[0]["kind_label"] == "企业工会"
    assert enterprises[0]["employer_name"] == "测试机械厂"
    assert client.get(f"/api/v1/orgs?parent_id={city.id}").get_json()[0]["name"] == "测试区总工会"


def test_unexpected_error_is_a_json_500_and_rolls_back(client, monkeypatch):
    from server.services import orgs as org_service

    def boom(**_):
        db.add(Organisation(name="不应保存", kind="city", path="/x/"))
        db.flush()
        raise RuntimeError("boom")

    monkeypatch.setattr(org_service, "list_orgs", boom)
    response = client.get("/api/v1/orgs")
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    assert db.scalar(select(func.count()).select_from(Organisation)) == 0


def test_after_commit_actions_run_only_on_commit():
    ran = []
    after_commit(db(), ran.append, "committed")
    db.rollback()
    assert ran == []
    after_commit(db(), ran.append, "committed")
    db.commit()
    assert ran == ["committed"]


def test_org_paths_make_subtrees():
    from server.services.orgs import subtree_ids

    city = create_org(name="甲市总工会", kind="city")
    d1 = create_org(name="甲市一区总工会", kind="district", parent=city)
    d2 = create_org(name="甲市二区总工会", kind="district", parent=city)
    e1 = create_org(name="一区企业工会", kind="enterprise", parent=d1)
    assert e1.path == f"/{city.id}/{d1.id}/{e1.id}/"
    assert set(subtree_ids(d1)) == {d1.id, e1.id}
    assert set(subtree_ids(city)) == {city.id, d1.id, d2.id, e1.id}
    assert e1.is_within(city) and not e1.is_within(d2)
    with pytest.raises(ValueError):
        create_org(name="孤儿企业工会", kind="enterprise")


def _db_error(orig: Exception, statement: str | None = "SELECT 1", invalidated: bool = False):
    from sqlalchemy.exc import DBAPIError

    return DBAPIError.instance(statement, {}, orig, _PgError, connection_invalidated=invalidated)


class _PgError(Exception):
    """A driver error carrying a SQLSTATE, as psycopg's do."""

    def __init__(self, sqlstate):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class OperationalError(_PgError):
    """Named like the DB-API class, so that SQLAlchemy wraps it as its OperationalError."""


@pytest.mark.parametrize("error, busy", [
    (lambda: PoolTimeoutError("QueuePool limit of size 10 overflow 20 reached"), True),
    (lambda: _db_error(_PgError("53300"), statement=None), True),  # too many connections, at connect
    (lambda: _db_error(OperationalError(None), statement=None), True),  # refused: no server answered
    (lambda: _db_error(_PgError(None), statement=None), False),  # some other failure outside a statement
    (lambda: _db_error(_PgError("57P01")), True),  # the server is shutting down
    (lambda: _db_error(_PgError(None), invalidated=True), True),  # a lost connection (the pool is renewed)
    (lambda: RedisConnectionError("Connection refused"), True),
    (lambda: _db_error(_PgError("40P01")), False),  # a deadlock is a bug
    (lambda: _db_error(_PgError("23505"), statement=None), False),  # a constraint failing at commit
])
def test_a_database_or_redis_that_cannot_serve_is_a_503_with_retry_after(client, monkeypatch, error, busy):
    from server.services import orgs as org_service

    def fail(**_):
        raise error()

    monkeypatch.setattr(org_service, "list_orgs", fail)
    response = client.get("/api/v1/orgs")
    if busy:
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert response.get_json() == {"code": "service_busy", "message": "系统繁忙，请稍后再试"}
    else:
        assert response.status_code == 500 and response.get_json()["code"] == "internal_error"


def test_an_idle_pooled_connection_is_pinged_and_replaced_when_dead(tmp_path):
    """``handle_stale_connections``: a connection that sat unused is checked, and a dead one replaced, before use."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import QueuePool

    from server.extensions import handle_stale_connections

    engine = create_engine(f"sqlite:///{tmp_path / 'ping.db'}", poolclass=QueuePool, pool_size=1, max_overflow=0)
    handle_stale_connections(engine, idle=0)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
        assert conn.execute(text("SELECT 1")).scalar() == 1
    first.close()  # the connection dies while it sits in the pool
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 2")).scalar() == 2
        assert conn.connection.dbapi_connection is not first
    engine.dispose()


@pytest.mark.postgres
def test_connections_dropped_by_the_database_cost_one_503_then_the_pool_is_renewed(app, client):
    """Without pre-ping, a request on a connection the server ended answers 503 (never 500); SQLAlchemy then
    replaces the stale connections, so requests are soon served again."""
    import psycopg
    from sqlalchemy import text

    engine = app.extensions["unionhub"]["engine"]
    held = [engine.connect() for _ in range(3)]  # several pooled connections, all just used: none is pinged again
    for conn in held:
        conn.execute(text("SELECT 1"))
        conn.close()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                "current_database() AND pid <> pg_backend_pid()").fetchall()
    assert dropped
    response = client.get("/api/v1/orgs")
    assert response.status_code == 503 and response.get_json()["code"] == "service_busy"
    assert response.headers["Retry-After"] == "2"
    statuses = []  # each stale connection fails at most once, then the pool's connections are new
    while not statuses or statuses[-1] != 200 and len(statuses) <= engine.pool.size():
        statuses.append(client.get("/api/v1/orgs").status_code)
    assert set(statuses[:-1]) <= {503} and statuses[-1] == 200
