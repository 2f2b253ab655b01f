"""Skill competitions: sign-up, teams, the waiting list, offers, approval and check-in.

Places under a sign-up rush
---------------------------
Nothing a sign-up does waits for another sign-up's commit.  A competition's
places are rows of ``competition_places``, exactly ``capacity`` of them
(created with the competition and kept so on every capacity change), each
free or held by one entry (``entry_id``, unique): capacity cannot be exceeded,
whatever the code does.  A sign-up, in one short transaction:

1. passes the competition's *gate* shared (below) and loads the competition (a worker's own sign-up: with the
   entrant and their union, in one query; the token gave only the person id);
2. INSERTs its entry (``ON CONFLICT DO NOTHING`` on the partial unique index
   ``uq_competition_entries_active``: no row means ``already_entered``) and,
   with an organisation quota, takes the quota with a conditional UPDATE of the
   quota row (``active_count + n <= org_quota``): every refusal comes before 3;
3. when nobody waits, claims the lowest free place nobody else is claiming::

       UPDATE competition_places SET entry_id = :entry
        WHERE competition_id = :c AND place_no = (SELECT place_no FROM competition_places
              WHERE competition_id = :c AND entry_id IS NULL ORDER BY place_no LIMIT 1 FOR UPDATE SKIP LOCKED)

   When every free place is being claimed, it waits for those claims, one place
   at a time (an UPDATE of the lowest such place in a savepoint, rolled back when
   the place turned out taken, so a waiting sign-up holds no place while it waits
   and sign-ups never wait for each other in a cycle): a claim that rolls back
   leaves its place to this sign-up, so a place is never left free while a later
   sign-up goes to the waiting list.  After such a wait it checks the waiting list again: nobody
   overtakes someone waiting (and a head team that needs more places than are
   free keeps later sign-ups waiting too);
4. takes its arrival number (and, when confirmed, its candidate number) from
   ``competition_counters``, bumped like ``nextval``: one UPDATE ... RETURNING
   in an autocommit transaction of its own on another connection (a small
   pool of its own per process), so its row lock lasts one statement.  The
   time it returns is taken under that lock, so
   ``status_changed_at`` follows arrival order.  Numbers are taken after the
   outcome: a unit that took places has a lower number than every unit that then
   had to wait, so arrival order and outcomes agree;
5. writes the entry's state and an audit row, and the handler commits at once.

A waiting unit's position in the answer is its arrival number less the numbers
below it that are no longer waiting: the numbers below it not yet visible
belong to sign-ups still committing that had to wait as well.  It is exact
unless a request below it rolled back after taking its number (every refusal
comes before that; a crash or failed commit leaves a gap); the views
(``waitlist_position``, ``waitlist_length``, ``places_left``) always count
committed rows through indexes.  On SQLite the one write lock serialises
writers anyway: the same statements without the locking clauses.

On PostgreSQL a worker's sign-up is about seven round trips (BEGIN, gate,
read, INSERT, numbering, settle, COMMIT; a claim and a look at the waiting
list more for a place), each compiled once and run straight on the psycopg
connection (:class:`_OnDriver`): SQLAlchemy's per-statement execution cost
more CPU than anything else the sign-up does.  Everything else (the session,
its transaction, the ORM objects the answer is built from) is as elsewhere.

The gate is a transaction-level advisory lock per competition
(``pg_advisory_xact_lock[_shared](GATE, id)``; on SQLite the write lock):
sign-up, team submission, team creation and joins take it shared; every path
that moves places or the waiting list (withdrawal, rejection, removal,
approval, an offer confirmed or expiring, a promotion, a team's withdrawal, a
capacity or status edit) takes it exclusive, and then locks, in this one order,
the competition row, the team row and the quota rows (by org id), re-reads the
entries and moves them with :func:`_move` (their places, quota counts and
team counts follow their status).  So those paths never run beside a sign-up
of the same competition, and they see every sign-up before them committed.
PostgreSQL queues advisory locks fairly: a waiting exclusive request holds
back later shared ones, so a withdrawal is not starved by a rush.  Waiting-list
order is arrival order (``arrival_no``; a team's members share one number).

A place freed by a withdrawal, rejection, removal or expired offer goes at
once to the head of the waiting list as an *offer* (``offered``, deadline
``offer_hours``); a head team needing more places than are free waits (no
overtaking).  A capacity raise adds free places but does not promote by
itself: staff choose whom to promote by hand (and new sign-ups still queue
behind the waiting list).  A capacity cut deletes free places only, never
below the places held.  The organisation quota counts every entry in
``COUNTED_STATUSES`` (waitlisted too), so a promotion never pushes an
organisation over it.

Teams
-----
Capacity counts people: a submitted team takes as many places as it has
members, all at once, or waits as one entry of the waiting list.  A team is
created by a worker (its captain, who becomes its first member) or by an
enterprise union officer (who adds workers of their own union); members join
with the team's join code.  A member's entry is ``forming`` until the team
is submitted (the person's one active entry, no place, no quota), and every
member is checked against the rules when joining.  ``member_count`` is kept
by a conditional UPDATE, so a rush of joins cannot pass ``team_max``.  After
submission the team's entries move together (approve, reject, remove,
promote, offer, confirm, expire, withdraw act on the whole team).
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, bindparam, case, create_engine, exists, func, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

from server.errors import Conflict, Forbidden, NotFound, ServiceError
from server.extensions import db, handle_stale_connections
from server.models import (
    COMPETITION_LEVEL_LABELS,
    ENTRY_STATUS_LABELS,
    SKILL_LEVEL_LABELS,
    Competition,
    CompetitionEntry,
    CompetitionLevel,
    EntryStatus,
    Organisation,
    Person,
    SkillLevel,
    Staff,
    StaffRole,
)
from server.models.competitions import (
    _ACTIVE_SQL,
    ACTIVE_STATUSES,
    COUNTED_STATUSES,
    HOLDING_STATUSES,
    SETTLED_STATUSES,
    TEAM_STATUS_LABELS,
    CompetitionPlace,
    CompetitionQuotaCount,
    CompetitionTeam,
    TeamStatus,
    new_token,
)
from server.models.audit import AuditEntry
from server.services.audit import actor_ref, record_audit
from server.services.auth import in_scope, login_expired, require_in_scope, require_role, scope_filter
from server.services.txn import insert_ignore
from server.timeutil import CHINA, fmt_local

E = EntryStatus
ACTIVE = [s.value for s in ACTIVE_STATUSES]
HOLDING = [s.value for s in HOLDING_STATUSES]
COUNTED = [s.value for s in COUNTED_STATUSES]
#: An entry in one of these states has had its arrival number and is no longer waiting.
SETTLED = [s.value for s in SETTLED_STATUSES]
C, Q, T, CE, P = Competition, CompetitionQuotaCount, CompetitionTeam, CompetitionEntry, CompetitionPlace
#: SQLite's write lock is taken with a no-op UPDATE, which is not an edit of the competition: ``updated_at`` stays.
KEEP_UPDATED_AT = {"updated_at": C.updated_at}
#: The advisory lock class of the competitions' gates on PostgreSQL: ``pg_advisory_xact_lock[_shared](GATE, id)``.
GATE = 0x5548
#: The admission QR code's payload is this prefix plus the entry's unguessable token.
ADMISSION_PREFIX = "UHE:"
#: Offers due within this time get a reminder from the sweep.
OFFER_REMINDER_WINDOW = timedelta(hours=6)
#: Team join codes: 8 characters without look-alikes (0/O, 1/I).
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

COMPETITION_FIELDS = ("name", "trade", "level", "organiser_org_id", "description", "venue", "signup_start",
                      "signup_end", "theory_at", "practical_at", "capacity", "org_quota", "org_quota_kind",
                      "offer_hours", "eligibility", "entry_mode", "team_min", "team_max", "needs_approval",
                      "theory_weight", "practical_weight", "status")
#: A new competition's values where the request says nothing.
NEW_DEFAULTS = dict(status="draft", eligibility={}, entry_mode="individual", needs_approval=False, theory_weight=30,
                    practical_weight=70, offer_hours=48, org_quota_kind="enterprise")
#: Allowed competition status changes (PATCH status).
STATUS_FLOW = {"draft": {"published", "cancelled"}, "published": {"cancelled", "finished"},
               "cancelled": set(), "finished": set()}
#: Why an entry in a given state cannot be checked in / changed, for the worker.
NOT_CONFIRMED_MESSAGES = {
    E.FORMING.value: "您的团队尚未提交报名，暂不能签到",
    E.PENDING_APPROVAL.value: "您的报名尚在审核中，暂不能签到",
    E.WAITLISTED.value: "您目前在候补名单中，暂不能签到",
    E.OFFERED.value: "您已获递补名额，请先在小程序中确认参赛",
    E.WITHDRAWN.value: "您已退赛，不能签到",
    E.REJECTED.value: "您的报名未通过审核，不能签到",
    E.REMOVED.value: "您的参赛资格已被取消，不能签到",
    E.EXPIRED.value: "您未在期限内确认递补名额，不能签到",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def invalid_state(entry, message: str = "当前状态不允许此操作", code: str = "invalid_state") -> Conflict:
    """409 with the entry's (or team's) current state."""
    return Conflict(code, message, current_state=entry.status)


def _postgres() -> bool:
    return db.get_bind().dialect.name == "postgresql"


class _OnDriver:
    """A Core statement compiled once for PostgreSQL and run straight on the psycopg connection of the session's
    transaction: the sign-up's hot path (see :func:`sign_up`).

    What SQLAlchemy's execution adds to a statement (the session's and the connection's bookkeeping, the execution
    context, the cursor result) was about a quarter of a sign-up's CPU in the server, i.e. 60-80 us a statement;
    this skips it and keeps the rest: the same SQL, the same transaction, the columns' result processors (the
    UTC datetimes), and a driver error raised as SQLAlchemy raises it (see :func:`_driver_execute`).  The
    parameters are passed as they are: ints, strings and aware UTC datetimes, which need no bind processing.
    Only SQLAlchemy's public API is used (the statement's ``exported_columns``, each type's ``dialect_impl`` and
    its ``result_processor``); the PostgreSQL tests check the answers' values and types."""

    def __init__(self, statement):
        self.statement, self.sql, self.defaults, self.processors = statement, None, {}, None

    def _compile(self, dialect) -> None:
        compiled = self.statement.compile(dialect=dialect)
        columns = list(getattr(self.statement, "exported_columns", ()))  # a text() statement has none
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.processors = processors if any(processors) else None
        self.defaults = {key: value for key, value in compiled.params.items() if value is not None}  # literals
        self.sql = compiled.string

    def execute(self, connection, params: dict):
        """Run the statement: answers the psycopg cursor."""
        if self.sql is None:
            self._compile(connection.dialect)
        return _driver_execute(connection, connection.connection.driver_connection, connection.engine, self.sql,
                               {**self.defaults, **params} if self.defaults else params)

    def row(self, cursor) -> tuple | None:
        """The cursor's first row, through the columns' result processors."""
        row = cursor.fetchone()
        if row is None or self.processors is None:
            return row
        return tuple(p(v) if p else v for p, v in zip(self.processors, row))

    def first(self, connection, params: dict) -> tuple | None:
        return self.row(self.execute(connection, params))


def _driver_execute(owner, driver_connection, engine, sql: str, params: dict):
    """Run driver SQL on ``driver_connection`` (the psycopg connection of ``owner``: a SQLAlchemy Connection, or a
    pooled connection from ``engine.raw_connection()``); a driver error is raised as SQLAlchemy raises it: wrapped
    in its ``DBAPIError`` subclass (IntegrityError, OperationalError, ...), and a lost connection invalidated with
    the pool it came from (``engine.dispose()``: the connections it holds are as stale as this one), so the request
    is answered 503 ``service_busy`` and the next one gets a new connection."""
    dialect = engine.dialect
    try:
        return driver_connection.execute(sql, params)
    except dialect.loaded_dbapi.Error as err:
        if dialect.is_disconnect(err, driver_connection, None):
            owner.invalidate(err)
            engine.dispose(close=False)  # the other pooled connections are replaced as they come back
        raise sa_exc.DBAPIError.instance(sql, params, err, dialect.loaded_dbapi.Error, dialect=dialect) from err


# -- loading and locking ---------------------------------------------------------------------------

_GATES = {exclusive: select((func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared)(
    GATE, bindparam("id"))) for exclusive in (False, True)}


def _gate(competition_id: int, exclusive: bool) -> None:
    """Pass the competition's gate for the rest of the transaction: shared for the paths that only add (sign-up,
    team submission, team creation and joins), exclusive for every path that moves places or the waiting list
    (see the module docstring).  PostgreSQL: a transaction-level advisory lock (queued fairly: a waiting exclusive
    request holds back later shared ones).  SQLite: a no-op UPDATE takes the single write lock at once, instead of
    failing to upgrade a read later."""
    if _postgres():
        db.execute(_GATES[exclusive], {"id": competition_id})
    else:
        db.execute(update(C).where(C.id == competition_id).values(**KEEP_UPDATED_AT)
                   .execution_options(synchronize_session=False))


def _columns(model) -> list[tuple[str, object]]:
    mapper = model.__mapper__
    return [(mapper.get_property_by_column(column).key, column) for column in mapper.local_table.c]


_COMPETITION_COLUMNS, _ORG_COLUMNS = _columns(C), _columns(Organisation)
_LOAD_WITH_ORG = (select(*(c for _, c in _COMPETITION_COLUMNS), *(c for _, c in _ORG_COLUMNS))
                  .select_from(C.__table__.outerjoin(Organisation.__table__, Organisation.id == bindparam("org_id")))
                  .where(C.id == bindparam("competition_id")))


def _as_loaded(model, values: dict):
    """A new ORM object with ``values`` (its primary key among them) as its loaded state, attached to the session
    (persistent; the columns not given are loaded on access).  As the ORM's loading does it: the values go
    straight into the instance's dict, no attribute events, no change history; the constructor's per-attribute
    sets cost 2-3 times as much and were a tenth of a sign-up's CPU."""
    obj = model.__mapper__.class_manager.new_instance()
    instance_dict(obj).update(values)
    make_transient_to_detached(obj)  # the values as the committed state, the other columns expired
    db.add(obj)
    return obj


def _attached(model, values: dict):
    """The ORM object for a row read with Core: the session's own one, refreshed, or a new one attached to the
    session as loaded (what a query with ``populate_existing`` gives, without the ORM's per-row cost)."""
    obj = db.identity_map.get(db.identity_key(model, values["id"]))
    if obj is None:
        obj = _as_loaded(model, values)
    else:
        for key, value in values.items():
            set_committed_value(obj, key, value)
    return obj


def _load(competition_id: int, for_update: bool = False, person: Person | None = None) -> Competition | None:
    """The competition as it now is; with ``person``, their organisation too, in the same (Core) query, set as
    ``person.org``: the sign-up's eligibility and quota rules then cost no query."""
    if person is None or person.org_id is None:
        query = select(C).where(C.id == competition_id).execution_options(populate_existing=True)
        return db.scalar(query.with_for_update() if for_update else query)
    db.flush()  # a Core query does not autoflush, and the objects it refreshes must have no pending changes
    row = db.execute(_LOAD_WITH_ORG, {"competition_id": competition_id, "org_id": person.org_id}).first()
    if row is None:
        return None
    n = len(_COMPETITION_COLUMNS)
    org = {key: row[n + i] for i, (key, _) in enumerate(_ORG_COLUMNS)}
    set_committed_value(person, "org", _attached(Organisation, org) if org["id"] is not None else None)
    return _attached(C, {key: row[i] for i, (key, _) in enumerate(_COMPETITION_COLUMNS)})


#: What a sign-up by the entrant's id reads, in one query after the gate: the competition's columns sign-up and its
#: answer use, the entrant's columns the eligibility rules use, and the entrant's union (its path).  Anything else
#: is loaded on access (the objects are attached with those attributes expired).
_SIGN_UP_COLUMNS = (
    (C, ("id", "name", "organiser_org_id", "status", "signup_start", "signup_end", "capacity", "org_quota",
         "org_quota_kind", "offer_hours", "eligibility", "entry_mode", "needs_approval")),
    (Person, ("id", "org_id", "real_name", "id_number_hash", "birth_date", "trade", "skill_level", "is_member")),
    (Organisation, ("id", "parent_id", "kind", "name", "path")),
)
_PEOPLE, _COMPETITIONS, _ORGS = Person.__table__, C.__table__, Organisation.__table__
_LOAD_FOR_SIGN_UP = (
    select(*(model.__mapper__.get_property(key).columns[0] for model, keys in _SIGN_UP_COLUMNS for key in keys))
    .select_from(_PEOPLE.outerjoin(_COMPETITIONS, _COMPETITIONS.c.id == bindparam("competition_id"))
                 .outerjoin(_ORGS, _ORGS.c.id == _PEOPLE.c.org_id))
    .where(_PEOPLE.c.id == bindparam("person_id")))  # table columns only: a Core statement, no ORM execution


_GATE_ON_DRIVER, _LOAD_ON_DRIVER = _OnDriver(_GATES[False]), _OnDriver(_LOAD_FOR_SIGN_UP)


def _enter_for_sign_up(competition_id: int, person_id: int) -> tuple[Competition | None, Person | None]:
    """Pass the competition's shared gate, then read the competition and the entrant (their union set as
    ``person.org``) in one query; None for either one missing.

    Two statements: the read must see what the paths that held the gate exclusively committed, and a statement's
    snapshot is taken when it starts, before a lock it takes is granted.  (Sending them together in psycopg's
    pipeline mode saved the round trip but cost more CPU on both sides than it saved.)"""
    db.flush()  # a Core query does not autoflush, and the objects it refreshes must have no pending changes
    params = {"competition_id": competition_id, "person_id": person_id}
    if _postgres():
        connection = db.connection()
        _GATE_ON_DRIVER.execute(connection, {"id": competition_id})
        row = _LOAD_ON_DRIVER.first(connection, params)
    else:
        _gate(competition_id, exclusive=False)
        row = db.execute(_LOAD_FOR_SIGN_UP, params).first()
    if row is None:
        return None, None
    objects, i = [], 0
    for model, keys in _SIGN_UP_COLUMNS:
        values = dict(zip(keys, row[i:i + len(keys)]))
        objects.append(_attached(model, values) if values["id"] is not None else None)
        i += len(keys)
    competition, person, org = objects
    set_committed_value(person, "org", org)
    return competition, person


def lock_competition(competition_id: int) -> Competition:
    """The competition behind its exclusive gate, and its row locked, for the rest of the transaction."""
    _gate(competition_id, exclusive=True)
    competition = _load(competition_id, for_update=True)
    if competition is None:
        raise NotFound("找不到该竞赛")
    return competition


def _enter(competition_id: int, person: Person | None = None) -> Competition:
    """A competition workers may see, behind its shared gate, as it is now (sign-up and the team paths); with
    ``person``, their organisation is loaded in the same query."""
    _check_id(competition_id)
    _gate(competition_id, exclusive=False)
    return _visible(_load(competition_id, person=person))


def _check_id(competition_id: int) -> None:
    if not 0 < competition_id < 2**31:
        raise NotFound("找不到该竞赛")


def _visible(competition: Competition | None) -> Competition:
    if competition is None or competition.status == "draft":
        raise NotFound("找不到该竞赛")
    return competition


def _lock_team(team_id: int) -> CompetitionTeam:
    return db.scalar(select(T).where(T.id == team_id).with_for_update().execution_options(populate_existing=True))


def _lock_unit(entry: CompetitionEntry) -> tuple[Competition, list[CompetitionEntry]]:
    """Lock the competition (exclusive gate, then its row), the team row and the quota rows (by org id), in that
    order on every path (no deadlocks); answer the competition and the entries that move with ``entry``: itself,
    or its submitted team's entries in the same state."""
    competition_id, team_id = entry.competition_id, entry.team_id
    competition = lock_competition(competition_id)
    if team_id:
        _lock_team(team_id)
        orgs = set(db.scalars(select(CE.quota_org_id).where(CE.team_id == team_id)))
    else:
        orgs = {entry.quota_org_id}
    orgs = sorted(o for o in orgs if o)
    if orgs:
        db.execute(select(Q.org_id).where(Q.competition_id == competition_id, Q.org_id.in_(orgs))
                   .order_by(Q.org_id).with_for_update())
    db.refresh(entry)
    if not team_id or entry.status == E.FORMING.value:
        return competition, [entry]
    return competition, list(db.scalars(select(CE).where(CE.team_id == team_id, CE.status == entry.status)
                                        .order_by(CE.id).execution_options(populate_existing=True)))


def _get(model, ident: int):
    """``db.get`` that treats an id beyond the database's integer range as absent (no 5xx)."""
    return db.get(model, ident) if 0 < ident < 2**31 else None


def get_competition(competition_id: int) -> Competition:
    """A competition workers may see (published, cancelled or finished; not a draft)."""
    competition = _get(Competition, competition_id)
    if competition is None or competition.status == "draft":
        raise NotFound("找不到该竞赛")
    return competition


def staff_competition(staff: Staff, competition_id: int) -> Competition:
    competition = _get(Competition, competition_id)
    require_in_scope(staff, competition.organiser if competition else None, "找不到该竞赛")
    return competition


def person_entry(person: Person, competition_id: int) -> CompetitionEntry | None:
    """The person's active entry in the competition, else their latest one."""
    return db.scalar(select(CE).where(CE.competition_id == competition_id, CE.person_id == person.id)
                     .order_by(CE.status.in_(ACTIVE).desc(), CE.id.desc()).limit(1))


def _my_active_entry(person: Person, competition_id: int) -> CompetitionEntry:
    entry = person_entry(person, competition_id)
    if entry is None:
        raise NotFound("您没有报名该竞赛", code="not_entered")
    return entry


def staff_entry(competition: Competition, entry_id: int) -> CompetitionEntry:
    entry = _get(CompetitionEntry, entry_id)
    if entry is None or entry.competition_id != competition.id:
        raise NotFound("找不到该报名记录")
    return entry


# -- counting --------------------------------------------------------------------------------------

def places_left(competition: Competition) -> int:
    """Free place rows (the partial index of free places)."""
    return db.scalar(select(func.count()).select_from(P).where(P.competition_id == competition.id,
                                                                P.entry_id.is_(None)))


def places_held(competition_id: int) -> int:
    return db.scalar(select(func.count()).select_from(P).where(P.competition_id == competition_id,
                                                                P.entry_id.is_not(None)))


def _counts(ids: list[int]) -> dict[int, tuple[int, int]]:
    """``{competition id: (places left, waiting-list length)}`` for many competitions in two queries."""
    free = dict(db.execute(select(P.competition_id, func.count()).where(P.competition_id.in_(ids), P.entry_id.is_(None))
                           .group_by(P.competition_id)).all())
    waiting = dict(db.execute(select(CE.competition_id, func.count(CE.arrival_no.distinct())).where(
        CE.competition_id.in_(ids), CE.status == E.WAITLISTED.value).group_by(CE.competition_id)).all())
    return {i: (free.get(i, 0), waiting.get(i, 0)) for i in ids}


def waitlist_positions(competition_id: int) -> dict[int, int]:
    """``{entry id: position}`` for the whole waiting list, in one query (a team's members share theirs)."""
    rows = db.execute(select(CE.id, CE.arrival_no).where(CE.competition_id == competition_id,
                                                         CE.status == E.WAITLISTED.value).order_by(CE.arrival_no))
    positions, seen = {}, {}
    for entry_id, arrival in rows:
        positions[entry_id] = seen.setdefault(arrival, len(seen) + 1)
    return positions


def waitlist_position(entry: CompetitionEntry) -> int | None:
    """1 for the first on the waiting list (arrival order)."""
    if entry.status != E.WAITLISTED.value:
        return None
    if entry.known_position is not None:  # worked out by sign-up
        return entry.known_position
    return db.scalar(select(func.count(CE.arrival_no.distinct())).where(
        CE.competition_id == entry.competition_id, CE.status == E.WAITLISTED.value, CE.arrival_no <= entry.arrival_no))


# -- eligibility -----------------------------------------------------------------------------------

def _reason(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _allowed_orgs(competition: Competition) -> list[Organisation]:
    ids = (competition.eligibility or {}).get("org_ids") or [competition.organiser_org_id]
    return list(db.scalars(select(Organisation).where(Organisation.id.in_(ids))))


def eligibility_problems(competition: Competition, person: Person) -> list[dict]:
    """Every reason the person may not enter, at once (empty when eligible)."""
    rules = competition.eligibility or {}
    problems = []
    if not person.bound:
        problems.append(_reason("profile_incomplete", "请先完善个人信息（姓名、身份证号、所在企业工会）"))
    if rules.get("member_required") and not person.is_member:
        problems.append(_reason("not_member", "本竞赛仅限工会会员报名"))
    trades = rules.get("trades")
    if trades and person.trade not in trades:
        problems.append(_reason("trade_mismatch", "本竞赛限以下工种报名：" + "、".join(trades)))
    minimum = rules.get("min_skill_level")
    if minimum and (person.skill_level is None or SkillLevel(person.skill_level).rank < SkillLevel(minimum).rank):
        problems.append(_reason("skill_level_too_low", f"需具备{SKILL_LEVEL_LABELS[SkillLevel(minimum)]}及以上技能等级"))
    min_age, max_age = rules.get("min_age"), rules.get("max_age")
    if min_age or max_age:
        age = _age(person.birth_date, datetime.now(CHINA).date()) if person.birth_date else None
        if age is None:
            problems.append(_reason("age_unknown", "无法确定您的年龄，请先填写身份证号"))
        elif min_age and age < min_age:
            problems.append(_reason("too_young", f"报名年龄须满{min_age}周岁"))
        elif max_age and age > max_age:
            problems.append(_reason("too_old", f"报名年龄须在{max_age}周岁以下"))
    allowed = (competition.eligibility or {}).get("org_ids") or [competition.organiser_org_id]
    if not (person.org and any(f"/{org_id}/" in person.org.path for org_id in allowed)):  # the org or below it
        problems.append(_reason("org_not_eligible", "您所在的工会不在本竞赛的报名范围内"))
    return problems


def eligibility_text(competition: Competition) -> list[str]:
    rules = competition.eligibility or {}
    lines = ["工会会员"] if rules.get("member_required") else []
    if rules.get("trades"):
        lines.append("工种：" + "、".join(rules["trades"]))
    if rules.get("min_skill_level"):
        lines.append(f"技能等级：{SKILL_LEVEL_LABELS[SkillLevel(rules['min_skill_level'])]}及以上")
    if rules.get("min_age"):
        lines.append(f"年满{rules['min_age']}周岁")
    if rules.get("max_age"):
        lines.append(f"不超过{rules['max_age']}周岁")
    lines.append("所在工会：" + "、".join(o.name for o in _allowed_orgs(competition)) + "（含下属工会）")
    return lines


def signup_open(competition: Competition, now: datetime | None = None) -> bool:
    now = now or _now()
    return competition.status == "published" and competition.signup_start <= now <= competition.signup_end


def _require_eligible(competition: Competition, person: Person) -> None:
    problems = eligibility_problems(competition, person)
    if problems:
        raise ServiceError("not_eligible", "不符合报名条件：" + "；".join(p["message"] for p in problems), 403,
                           reasons=problems)


def _require_open(competition: Competition, team: bool) -> None:
    if not signup_open(competition):
        raise Conflict("window_closed", "不在报名时间内" if competition.status == "published" else "该竞赛已停止报名")
    if team and competition.entry_mode != "team":
        raise Conflict("individual_entry_required", "本竞赛为个人赛，请直接报名")
    if not team and competition.entry_mode == "team":
        raise Conflict("team_entry_required", "本竞赛以团队形式报名，请由领队或企业工会统一报名")


def _already_entered(entry: CompetitionEntry) -> Conflict:
    return Conflict("already_entered", "您已报名该竞赛", current_state=entry.status, entry_id=entry.id)


def _refuse_if_entered(person: Person, competition_id: int) -> None:
    """A fast, friendly look; the partial unique index decides (see :func:`_insert_entry`)."""
    existing = person_entry(person, competition_id)
    if existing is not None and existing.status in ACTIVE:
        raise _already_entered(existing)


def _quota_org_id(competition: Competition, person: Person) -> int | None:
    if competition.org_quota is None or person.org is None:
        return None
    ids = [int(part) for part in person.org.path.strip("/").split("/") if part]
    return db.scalar(select(Organisation.id).where(Organisation.id.in_(ids),
                                                   Organisation.kind == competition.org_quota_kind))


# -- places and numbers ----------------------------------------------------------------------------

def _insert_entry(competition: Competition, person: Person, staff: Staff | None, status: EntryStatus,
                  team_id: int | None = None, look_for_waiting: bool = False) -> tuple[CompetitionEntry, bool | None]:
    """INSERT the person's entry unless they hold an active one: ``ON CONFLICT DO NOTHING`` on the partial unique
    index of active entries, so no row means ``already_entered`` whoever raced whom.

    Answers the entry (attached to the session as loaded: no query) and, with ``look_for_waiting`` on
    PostgreSQL, whether someone is on the waiting list, asked in the same statement (else None).
    """
    now = _now()
    values = dict(competition_id=competition.id, person_id=person.id, org_id=person.org_id,
                  quota_org_id=_quota_org_id(competition, person), entered_by_staff_id=staff.id if staff else None,
                  team_id=team_id, arrival_no=None, status=status.value, status_changed_at=now, reason=None,
                  offer_expires_at=None, candidate_number=None, admission_token=new_token(), checked_in_at=None,
                  checked_in_via=None, checked_in_by_staff_id=None, created_at=now, updated_at=now)
    if _postgres():
        row = _insert_on_driver(look_for_waiting).first(db.connection(), values)
    else:
        row = db.execute(_insert_statement(False, False), values).first()
    if row is None:
        raise _already_entered(person_entry(person, competition.id))
    entry = _as_loaded(CE, {"id": row[0], **values})
    set_committed_value(entry, "competition", competition)  # (held: the session only holds objects weakly)
    return entry, (row[1] if len(row) > 1 else None)


@functools.cache
def _insert_statement(postgres: bool, look_for_waiting: bool):
    """The entry's INSERT ... ON CONFLICT DO NOTHING RETURNING id[, someone waiting], built once (executed with
    parameters it costs no compilation and little else)."""
    table = CE.__table__
    returning = [table.c.id]
    if look_for_waiting:
        returning.append(exists().where(*_waiting_clauses(bindparam("competition_id"), _OTHERS)))
    insert_ = (pg_insert if postgres else sqlite_insert)(table).values(
        {column: bindparam(column.key) for column in table.c if column.key != "id"})
    return insert_.on_conflict_do_nothing(index_elements=["competition_id", "person_id"],
                                          index_where=text(_ACTIVE_SQL)).returning(*returning)


@functools.cache
def _insert_on_driver(look_for_waiting: bool) -> "_OnDriver":
    """PostgreSQL's entry INSERT as an :class:`_OnDriver` (compiled once)."""
    return _OnDriver(_insert_statement(True, look_for_waiting))


def _take_quota(competition: Competition, orgs: Counter) -> None:
    """Count ``orgs`` ({quota org id: n}) in the quota, or refuse with ``org_quota_full`` (conditional UPDATEs,
    by org id: the lock order)."""
    for org_id, n in sorted(orgs.items()):
        take = (update(Q).where(Q.competition_id == competition.id, Q.org_id == org_id,
                                Q.active_count + n <= competition.org_quota)
                .values(active_count=Q.active_count + n).execution_options(synchronize_session=False))
        if db.execute(take).rowcount:
            continue
        # The first entry of this organisation creates its counter (a racing twin's row is seen after it commits).
        insert_ignore(Q.__table__, {"competition_id": competition.id, "org_id": org_id, "active_count": 0},
                      ["competition_id", "org_id"])
        if not db.execute(take).rowcount:
            raise Conflict("org_quota_full", f"您所在单位的报名名额（{competition.org_quota}人）已满")


_BUMP = ("UPDATE competition_counters SET last_arrival_no = last_arrival_no + :arrivals, "
         "last_candidate_no = last_candidate_no + :candidates WHERE competition_id = :competition_id "
         "RETURNING last_arrival_no, last_candidate_no")
#: Units below an arrival number that no longer wait (or never did): a waiting unit's position is the difference.
#: Its condition is the predicate of the partial index ``ix_competition_entries_settled`` (same statuses, same
#: order), which it is planned on: only settled entries are read (a few hundred in a rush), where the general
#: index, planned on the statistics of a table that was empty when the rush began, was scanned for every entry of
#: the competition, filtering statuses row by row (30 % of PostgreSQL's CPU in the benchmark).
_SETTLED_BELOW = ("SELECT count(DISTINCT e.arrival_no) FROM competition_entries e WHERE e.competition_id = :competition_id"
                  " AND e.status IN (" + ", ".join(f"'{s}'" for s in SETTLED) + ") AND e.arrival_no < {below}")
_BUMP_PG = (_BUMP + ", clock_timestamp()").replace(":arrivals", "%(arrivals)s").replace(
    ":candidates", "%(candidates)s").replace(":competition_id", "%(competition_id)s")
_BUMPS_PG = {False: _BUMP_PG, True: _BUMP_PG + ", (" + _SETTLED_BELOW.format(
    below="competition_counters.last_arrival_no").replace(":competition_id", "%(competition_id)s") + ")"}
_numbering_engines: dict = {}
_numbering_lock = threading.Lock()


#: Connections of a process's numbering pool: each is held for one statement that waits for nothing but other
#: numbering statements (the counter row is never locked by a request's transaction), so a few serve any number of
#: request threads, and a process never opens more than this many besides its request pool.
NUMBERING_CONNECTIONS = 4


def _numbering_engine():
    """PostgreSQL: an engine of autocommit connections with ``synchronous_commit=off`` for the counters, one per
    process and database (its pool is apart from the requests', which it can therefore never exhaust: a request
    waits for a numbering connection while holding its own, never the other way round).  Bounded at
    ``NUMBERING_CONNECTIONS``; idle connections are pinged before use, and a lost connection invalidates the pool
    (SQLAlchemy's disconnect handling, as for the request pool)."""
    url = db.get_bind().url
    key = (os.getpid(), url.render_as_string(hide_password=False))
    engine = _numbering_engines.get(key)
    if engine is None:
        with _numbering_lock:
            engine = _numbering_engines.get(key)
            if engine is None:
                engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=NUMBERING_CONNECTIONS,
                                       max_overflow=0, pool_recycle=1800, pool_reset_on_return=None,
                                       connect_args={"options": "-c synchronous_commit=off"})
                handle_stale_connections(engine)
                _numbering_engines[key] = engine
    return engine


def _numbers(competition_id: int, arrivals: int = 0, candidates: int = 0,
             settled: bool = False) -> tuple[int, int, datetime, int | None]:
    """Hand out ``arrivals`` arrival numbers and ``candidates`` candidate numbers: (last arrival number, last
    candidate number, the time they were taken, and with ``settled`` the units below that arrival number no
    longer waiting, counted in the same statement on PostgreSQL).

    PostgreSQL: like ``nextval``, in a transaction of its own on another connection, so no request waits for
    another's commit; the counter row is locked only for that one statement, whose time (``clock_timestamp()``,
    taken under that lock) therefore grows with the numbers.  A number whose request then rolls back is never
    used (a gap).  Its commit is asynchronous: the request's own commit flushes the WAL past it, so a number a
    committed entry uses survives a crash.  SQLite: in the request's transaction (it holds the write lock).
    """
    values = {"competition_id": competition_id, "arrivals": arrivals, "candidates": candidates}
    if _postgres():
        engine, sql = _numbering_engine(), _BUMPS_PG[settled]
        pooled = engine.raw_connection()  # one statement straight on the driver: no SQLAlchemy Connection for it
        try:
            row = _driver_execute(pooled, pooled.driver_connection, engine, sql, values).fetchone()
        finally:
            pooled.close()
        return row[0], row[1], row[2], (row[3] if settled else None)
    last_arrival, last_candidate = db.execute(text(_BUMP), values).one()
    below = db.scalar(text(_SETTLED_BELOW.format(below=":below")), {**values, "below": last_arrival}) if settled else None
    return last_arrival, last_candidate, _now(), below


def _waiting_clauses(competition_id, table=CE.__table__) -> list:
    """A (committed) unit on the waiting list; an entry being inserted by sign-up has no arrival number yet."""
    return [table.c.competition_id == competition_id, table.c.status == E.WAITLISTED.value,
            table.c.arrival_no.is_not(None)]


_OTHERS = CE.__table__.alias("w")


_ANYONE_WAITING = _OnDriver(select(CE.id).where(*_waiting_clauses(bindparam("competition_id"))).limit(1))


def _anyone_waiting(competition_id: int) -> bool:
    if _postgres():
        return _ANYONE_WAITING.first(db.connection(), {"competition_id": competition_id}) is not None
    return db.scalar(select(CE.id).where(*_waiting_clauses(competition_id)).limit(1)) is not None


def _free_places(competition_id: int, n: int, skip_locked: bool = False) -> list[int]:
    """The lowest-numbered ``n`` free places, locked (PostgreSQL; ``skip_locked``: those no one else is claiming)."""
    return list(db.scalars(select(P.place_no).where(P.competition_id == competition_id, P.entry_id.is_(None))
                           .order_by(P.place_no).limit(n).with_for_update(skip_locked=skip_locked)))


def _hold(competition_id: int, places: list[int], unit: list[CompetitionEntry]) -> None:
    table = P.__table__
    db.execute(update(table).where(table.c.competition_id == competition_id, table.c.place_no == bindparam("no"))
               .values(entry_id=bindparam("entry")), [{"no": no, "entry": e.id} for no, e in zip(places, unit)])


def _release(unit: list[CompetitionEntry]) -> None:
    db.execute(update(P).where(P.entry_id.in_([e.id for e in unit])).values(entry_id=None)
               .execution_options(synchronize_session=False))


def _claim_statement(skip_locked: bool) -> _OnDriver:
    table, competition_id = P.__table__, bindparam("competition_id")
    pick = (select(table.c.place_no).where(table.c.competition_id == competition_id, table.c.entry_id.is_(None))
            .order_by(table.c.place_no).limit(1).with_for_update(skip_locked=skip_locked).scalar_subquery())
    return _OnDriver(update(table).where(table.c.competition_id == competition_id, table.c.place_no == pick)
                     .values(entry_id=bindparam("entry_id")).returning(table.c.place_no))


_CLAIM_UNCLAIMED = _claim_statement(skip_locked=True)
_PLACES = P.__table__
#: The lowest place free in the statement's snapshot: possibly being claimed by a request not yet committed.
_LOWEST_FREE = _OnDriver(select(_PLACES.c.place_no).where(_PLACES.c.competition_id == bindparam("competition_id"),
                                                          _PLACES.c.entry_id.is_(None))
                         .order_by(_PLACES.c.place_no).limit(1))
#: That one place, if it is still free once its claim (if any) has ended: waits for that claim's transaction.
_TAKE_PLACE = _OnDriver(update(_PLACES).where(_PLACES.c.competition_id == bindparam("competition_id"),
                                              _PLACES.c.place_no == bindparam("place_no"), _PLACES.c.entry_id.is_(None))
                        .values(entry_id=bindparam("entry_id")).returning(_PLACES.c.place_no))
_WAIT_SAVEPOINT = {name: _OnDriver(text(f"{name} uh_claim_wait"))
                   for name in ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")}


def _claim_unclaimed(competition_id: int, entry_id: int) -> bool:
    """PostgreSQL: the lowest free place nobody else is claiming, for ``entry_id``, in one UPDATE (its sub-select
    locks the row, ``SKIP LOCKED``)."""
    return _CLAIM_UNCLAIMED.first(db.connection(), {"competition_id": competition_id,
                                                    "entry_id": entry_id}) is not None


def _claim_after_waiting(competition_id: int, entry_id: int) -> bool:
    """PostgreSQL, when every free place is being claimed: wait for those claims, one at a time, lowest place first;
    a claim that rolls back leaves its place to this sign-up.  False once no place is free.

    Each wait is one UPDATE of one named place in a savepoint that is rolled back when the place turned out
    taken: a statement that waits for a row lock keeps the rows it locked and then rejected until its
    transaction ends, so waiting on the next free place *inside* one statement (``FOR UPDATE`` without
    ``SKIP LOCKED`` over the free places) held the places it had waited for while waiting for the next, and a
    handful of such sign-ups could wait for each other (PostgreSQL's deadlock detector then aborts them: seen
    in the 220-sign-up rush test, four backends in that statement).  Here a waiting sign-up holds no place
    row while it waits, and a claimer waits for nothing, so no cycle can form."""
    connection = db.connection()
    params = {"competition_id": competition_id, "entry_id": entry_id}
    _WAIT_SAVEPOINT["SAVEPOINT"].execute(connection, {})  # one savepoint, rolled back to after each taken place
    while (row := _LOWEST_FREE.first(connection, params)) is not None:
        if _TAKE_PLACE.first(connection, {**params, "place_no": row[0]}) is not None:
            break
        _WAIT_SAVEPOINT["ROLLBACK TO SAVEPOINT"].execute(connection, {})  # the lock on the taken place goes
        if _claim_unclaimed(competition_id, entry_id):  # a place freed meanwhile by a claim that rolled back
            break
    _WAIT_SAVEPOINT["RELEASE SAVEPOINT"].execute(connection, {})  # (a claimed place stays locked)
    return row is not None


def _claim(competition_id: int, unit: list[CompetitionEntry]) -> bool:
    """Hold one free place per entry of ``unit`` (all of them or none); False when they are not all free.

    One entry (PostgreSQL): the lowest free place nobody else is claiming (``SKIP LOCKED``: concurrent sign-ups
    take different rows).  When every free place is being claimed, wait for those claims
    (:func:`_claim_after_waiting`): a claim that rolls back leaves its place to a waiting sign-up instead of
    leaving it free while this sign-up joins the waiting list.  A team waits for the claims at once, locking in
    place order.
    Then the waiting list is looked at again: someone may have joined it since the caller looked (after waiting
    for these claims, or a team that could not use the free places it had locked): nobody overtakes them.
    """
    n = len(unit)
    if n == 1 and _postgres():
        if not (_claim_unclaimed(competition_id, unit[0].id) or _claim_after_waiting(competition_id, unit[0].id)):
            return False
    else:
        places = _free_places(competition_id, n)
        if len(places) < n:
            return False
        _hold(competition_id, places, unit)
    if _anyone_waiting(competition_id):
        _release(unit)
        return False
    return True


def _seat(competition: Competition, unit: list[CompetitionEntry],
          waiting: bool | None = None) -> tuple[EntryStatus, int, int | None, int, datetime]:
    """Seat a new unit (a sign-up, a team's submission): its places, or the end of the waiting list.

    Answers (status, arrival number, waiting-list position, last candidate number, time).  Places are taken
    only when nobody waits (no overtaking) and all ``len(unit)`` are free.  The arrival number is taken after the
    outcome is known: a unit that took places has a lower number than every unit that then had to wait (each
    waited for the claims in flight), so arrival order and the outcome agree.  A waiting unit's position is its
    arrival number less the numbers below it no longer waiting: the numbers below it not yet visible belong to
    units still committing that had to wait too (claims were waited for, and the exclusive paths are kept out by
    the gate).  Exact unless a request below it rolled back after taking its number (rare: every refusal comes
    before); the views always count.  ``waiting``: whether someone waits, when the caller already asked.
    """
    if waiting is None:
        waiting = _anyone_waiting(competition.id)
    if not waiting and _claim(competition.id, unit):
        status = E.PENDING_APPROVAL if competition.needs_approval else E.CONFIRMED
        arrival, last_no, at, _ = _numbers(competition.id, arrivals=1,
                                           candidates=len(unit) if status == E.CONFIRMED else 0)
        return status, arrival, None, last_no, at
    arrival, _, at, settled = _numbers(competition.id, arrivals=1, settled=True)
    return E.WAITLISTED, arrival, arrival - settled, None, at


# -- state changes ---------------------------------------------------------------------------------

def _apply(unit: list[CompetitionEntry], to: EntryStatus, actor, action: str, reason: str | None = None, *,
           last_no: int | None = None, arrival: int | None = None, position: int | None = None,
           notice: str | None = None, now: datetime | None = None) -> None:
    """Write the unit's new state on its entries (its places already moved), audit it, and tell each worker
    someone else moved (after commit).  Candidate numbers end at ``last_no``."""
    now, competition = now or _now(), unit[0].competition
    needing = [e for e in unit if to == E.CONFIRMED and not e.candidate_number]
    numbers = iter(range(last_no - len(needing) + 1, last_no + 1)) if needing else iter(())
    for entry in unit:
        from_state = entry.status
        entry.status, entry.status_changed_at, entry.reason = to.value, now, reason
        if arrival is not None:
            entry.arrival_no, entry.known_position = arrival, position
        if to == E.OFFERED:
            entry.offer_expires_at = now + timedelta(hours=competition.offer_hours)
        if entry in needing:
            entry.candidate_number = f"{competition.id:03d}{next(numbers):04d}"
        record_audit(actor, f"competition_entry.{action}", "competition_entry", entry.id,
                     from_state=from_state, to_state=to.value, reason=reason, org_id=entry.org_id)
        if actor is not entry.person:
            notify(entry.id, notice or ("entered_for_you" if action == "sign_up" else to.value))


def _move(competition: Competition, unit: list[CompetitionEntry], to: EntryStatus, actor, action: str,
          reason: str | None = None, notice: str | None = None) -> None:
    """Move a unit (one entry, or a team's entries) of a locked competition: its places, quota and team count
    follow its status."""
    frm, n = unit[0].status, len(unit)
    if frm in HOLDING and to.value not in HOLDING:
        _release(unit)
    elif to.value in HOLDING and frm not in HOLDING:
        places = _free_places(competition.id, n)
        if len(places) < n:  # the callers check first; nothing is ever held twice or beyond capacity
            raise Conflict("no_place_free", "名额已满：请先调整竞赛名额或取消已确认的报名", current_state=frm)
        _hold(competition.id, places, unit)
    numbers = sum(1 for e in unit if to == E.CONFIRMED and not e.candidate_number)
    last = _numbers(competition.id, candidates=numbers)[1] if numbers else None
    if (frm in COUNTED) and to.value not in COUNTED:  # entries only enter the quota through _take_quota
        for org_id, k in Counter(e.quota_org_id for e in unit if e.quota_org_id).items():
            db.execute(update(Q).where(Q.competition_id == competition.id, Q.org_id == org_id)
                       .values(active_count=Q.active_count - k).execution_options(synchronize_session=False))
    team = unit[0].team
    if team is not None and to.value not in ACTIVE:
        team.member_count = T.member_count - n
        if frm != E.FORMING.value:
            team.status = TeamStatus.WITHDRAWN.value
    _apply(unit, to, actor, action, reason, last_no=last, notice=notice)
    db.flush()


def _fill_places(competition: Competition) -> None:
    """Offer free places to the head of the waiting list, in arrival order (competition locked); a head team
    needing more places than are free waits."""
    free = places_left(competition)
    while free > 0:
        head = db.scalar(select(func.min(CE.arrival_no)).where(CE.competition_id == competition.id,
                                                              CE.status == E.WAITLISTED.value))
        if head is None:
            return
        unit = list(db.scalars(select(CE).where(CE.competition_id == competition.id, CE.status == E.WAITLISTED.value,
                                                CE.arrival_no == head).order_by(CE.id)))
        if len(unit) > free:
            return
        _move(competition, unit, E.OFFERED, None, "promote", "候补递补")
        free -= len(unit)


def _free_place(entry: CompetitionEntry, to: EntryStatus, actor, action: str, reason: str | None) -> CompetitionEntry:
    competition, unit = _lock_unit(entry)
    allowed = ACTIVE if to in (E.WITHDRAWN, E.REMOVED) else [E.PENDING_APPROVAL.value]
    if entry.status not in allowed:
        raise invalid_state(entry)
    held = entry.status in HOLDING
    _move(competition, unit, to, actor, action, reason)
    if held:
        _fill_places(competition)
    return entry


def sign_up(person: Person | int, competition_id: int, staff: Staff | None = None) -> CompetitionEntry:
    """Enter the person: confirmed, pending_approval (holding a place) or waitlisted; or refuse with a reason.

    ``person`` may be the entrant's id (a worker's own sign-up: their token's person): they are then read with the
    competition in one query, and a person who no longer exists is a 401 ``invalid_token``, as at login.

    The caller should commit as soon as this returns: the entry's place row (or a quota row) stays locked until
    then (see the module docstring).
    """
    if isinstance(person, int):
        _check_id(competition_id)
        competition, person = _enter_for_sign_up(competition_id, person)
        if person is None:
            raise login_expired()
        _visible(competition)
    else:
        competition = _enter(competition_id, person)
    _require_open(competition, team=False)
    _require_eligible(competition, person)
    # Inserted as waitlisted without an arrival number (no one sees it before the commit) and given its real state
    # below; a second sign-up of the same person finds no row inserted: already_entered.
    entry, waiting = _insert_entry(competition, person, staff, E.WAITLISTED, look_for_waiting=not competition.org_quota)
    if entry.quota_org_id:
        _take_quota(competition, Counter({entry.quota_org_id: 1}))
    status, arrival, position, last_no, at = _seat(competition, [entry], waiting)
    _settle_sign_up(entry, status, staff or person, arrival=arrival, position=position, last_no=last_no, at=at)
    if staff is not None:
        notify(entry.id, "entered_for_you")
    return entry


_SETTLE_PG = text(
    "WITH moved AS (UPDATE competition_entries SET status = :status, arrival_no = :arrival_no, "
    "status_changed_at = :at, updated_at = :at, candidate_number = :candidate_number WHERE id = :id RETURNING id) "
    "INSERT INTO audit_log (at, actor_type, actor_id, org_id, action, entity_type, entity_id, to_state) "
    "SELECT :at, :actor_type, :actor_id, :org_id, 'competition_entry.sign_up', 'competition_entry', id, :status "
    "FROM moved")
_SETTLE_ON_DRIVER = _OnDriver(_SETTLE_PG)


def _settle_sign_up(entry: CompetitionEntry, status: EntryStatus, actor, *, arrival: int, position: int | None,
                    last_no: int, at: datetime) -> None:
    """Write a new sign-up's state and its audit row (what :func:`_apply` does, in one statement on PostgreSQL),
    keeping the ORM object in step without a flush."""
    values = {"status": status.value, "arrival_no": arrival, "at": at, "id": entry.id,
              "candidate_number": f"{entry.competition_id:03d}{last_no:04d}" if status == E.CONFIRMED else None}
    actor_type, actor_id = actor_ref(actor)
    audit = {"actor_type": actor_type, "actor_id": actor_id, "org_id": entry.org_id}
    if _postgres():
        _SETTLE_ON_DRIVER.execute(db.connection(), {**values, **audit})
    else:
        table = CE.__table__
        db.execute(update(table).where(table.c.id == entry.id).values(
            status=status.value, arrival_no=arrival, status_changed_at=at, updated_at=at,
            candidate_number=values["candidate_number"]))
        db.execute(insert(AuditEntry.__table__).values(at=at, action="competition_entry.sign_up",
                                                       entity_type="competition_entry", entity_id=entry.id,
                                                       to_state=status.value, **audit))
    for key, value in (("status", status.value), ("arrival_no", arrival), ("status_changed_at", at),
                       ("updated_at", at), ("candidate_number", values["candidate_number"])):
        set_committed_value(entry, key, value)
    entry.known_position = position


def sign_up_on_behalf(staff: Staff, competition_id: int, person_id: int) -> CompetitionEntry:
    """An enterprise union officer enters a worker of their own union (and no one else's)."""
    return sign_up(_officers_worker(staff, person_id), competition_id, staff)


def _officers_worker(staff: Staff, person_id: int) -> Person:
    require_role(staff, StaffRole.OFFICER)
    person = _get(Person, person_id)
    require_in_scope(staff, person.org if person else None, "找不到该职工")
    return person


def withdraw(person: Person, competition_id: int, reason: str | None = None) -> CompetitionEntry:
    entry = _my_active_entry(person, competition_id)
    if entry.team_id and entry.status in ACTIVE:
        raise invalid_state(entry, "团队报名请在团队页面退出团队，或由队长撤回团队报名", "team_entry")
    if entry.checked_in_at is not None:
        raise invalid_state(entry, "您已签到，不能退赛")
    return _free_place(entry, E.WITHDRAWN, person, "withdraw", reason)


def confirm_offer(person: Person, competition_id: int) -> CompetitionEntry:
    """Accept a waiting-list offer before its deadline (a team member accepts for the whole team)."""
    competition, unit = _lock_unit(_my_active_entry(person, competition_id))
    entry = unit[0]
    if entry.status != E.OFFERED.value:
        raise invalid_state(entry, "您没有待确认的递补名额")
    if entry.offer_expires_at <= _now():
        raise invalid_state(entry, "递补名额的确认期限已过", "offer_expired")
    _move(competition, unit, E.CONFIRMED, person, "confirm_offer", notice="team_confirmed")
    return next(e for e in unit if e.person_id == person.id)


def staff_action(staff: Staff, competition: Competition, entry_id: int, action: str,
                 reason: str | None = None) -> CompetitionEntry:
    """approve / reject a pending entry, remove an entry, or promote a waitlisted entry by hand (a team's entry:
    the whole team)."""
    require_role(staff, StaffRole.ORGANISER, *([StaffRole.REVIEWER] if action in ("approve", "reject") else []))
    entry = staff_entry(competition, entry_id)
    if action in ("reject", "remove"):
        return _free_place(entry, E.REJECTED if action == "reject" else E.REMOVED, staff, action, reason)
    competition, unit = _lock_unit(entry)
    wanted = E.PENDING_APPROVAL if action == "approve" else E.WAITLISTED
    if entry.status != wanted.value:
        raise invalid_state(entry)
    if action == "promote" and places_left(competition) < len(unit):
        raise Conflict("no_place_free", "名额已满：请先调整竞赛名额或取消已确认的报名", current_state=entry.status)
    _move(competition, unit, E.CONFIRMED if action == "approve" else E.OFFERED, staff, action, reason)
    return entry


def expire_offers(now: datetime | None = None) -> list[int]:
    """Expire offers past their deadline and pass each place on (system actor).  Safe to run twice at once."""
    now = now or _now()
    ids = db.scalars(select(CE.id).where(CE.status == E.OFFERED.value, CE.offer_expires_at < now)
                     .order_by(CE.competition_id, CE.id)).all()
    expired = []
    for entry_id in ids:
        competition, unit = _lock_unit(db.get(CE, entry_id))
        if unit[0].status == E.OFFERED.value and unit[0].offer_expires_at < now:
            _move(competition, unit, E.EXPIRED, None, "expire_offer", "未在期限内确认递补名额")
            _fill_places(competition)
            expired.extend(e.id for e in unit)
    return expired


def remind_offers(within: timedelta = OFFER_REMINDER_WINDOW, now: datetime | None = None) -> list[int]:
    """Remind offers due within ``within`` (once each: the inbox dedup key)."""
    now = now or _now()
    ids = list(db.scalars(select(CE.id).where(CE.status == E.OFFERED.value, CE.offer_expires_at >= now,
                                              CE.offer_expires_at < now + within)))
    for entry_id in ids:
        notify(entry_id, "offer_reminder")
    return ids


def notify(entry_id: int, kind: str) -> None:
    """Tell the worker after commit (the job writes the inbox row, once per entry and kind)."""
    from jobs import queues
    from jobs.competitions import notify_entry

    queues.enqueue_after_commit(notify_entry, entry_id, kind, queue=queues.HIGH, job_id=f"notify-entry-{entry_id}-{kind}")


# -- teams -----------------------------------------------------------------------------------------

def _join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(8))


def _team_competition(competition_id: int) -> Competition:
    competition = _enter(competition_id)
    _require_open(competition, team=True)
    return competition


def _get_team(team_id: int) -> CompetitionTeam:
    team = _get(CompetitionTeam, team_id)
    if team is None:
        raise NotFound("找不到该团队", code="team_not_found")
    return team


def managed_team(actor: Person | Staff, team_id: int) -> CompetitionTeam:
    """The team, if ``actor`` runs it: its captain, or an officer (admin) of the team's union or above it."""
    team = _get_team(team_id)
    if isinstance(actor, Staff):
        require_role(actor, StaffRole.OFFICER)
        if not in_scope(actor, team.org):
            raise NotFound("找不到该团队", code="team_not_found")
    elif team.captain_person_id != actor.id:
        if db.scalar(select(CE.id).where(CE.team_id == team.id, CE.person_id == actor.id).limit(1)) is None:
            raise NotFound("找不到该团队", code="team_not_found")
        raise Forbidden("只有队长可以进行此操作", code="not_captain")
    return team


def _team_conflict(team: CompetitionTeam, message: str, code: str = "invalid_state") -> Conflict:
    return Conflict(code, message, current_state=team.status)


def create_team(competition_id: int, name: str, *, person: Person | None = None,
                staff: Staff | None = None) -> CompetitionTeam:
    """A worker creates a team as its captain (and first member), or an officer creates one for their union."""
    competition = _team_competition(competition_id)
    if staff is not None:
        require_role(staff, StaffRole.OFFICER)
        org_id = staff.org_id
    else:
        _refuse_if_entered(person, competition_id)
        _require_eligible(competition, person)
        org_id = person.org_id
    team = CompetitionTeam(competition=competition, name=name, join_code=_join_code(), org_id=org_id,
                           captain_person_id=person.id if person else None,
                           created_by_staff_id=staff.id if staff else None, status=TeamStatus.FORMING.value,
                           member_count=0)
    db.add(team)
    db.flush()
    record_audit(staff or person, "competition_team.create", "competition_team", team.id, org_id=org_id,
                 to_state=team.status)
    if person is not None:
        _add_member(team, person, person)
    return team


def _add_member(team: CompetitionTeam, person: Person, actor: Person | Staff) -> CompetitionEntry:
    competition = _enter(team.competition_id)  # shared gate before the team row (the lock order)
    _require_open(competition, team=True)
    _refuse_if_entered(person, competition.id)
    _require_eligible(competition, person)
    # The team row: still forming and not full, in one conditional UPDATE (a rush of joins cannot pass team_max).
    joined = db.execute(update(T).where(T.id == team.id, T.status == TeamStatus.FORMING.value,
                                        T.member_count < competition.team_max)
                        .values(member_count=T.member_count + 1).execution_options(synchronize_session=False))
    db.refresh(team)
    if not joined.rowcount:
        if team.status != TeamStatus.FORMING.value:
            raise _team_conflict(team, "该团队已提交报名或已撤回，不能再加入")
        raise _team_conflict(team, f"该团队人数已满（最多{competition.team_max}人）", "team_full")
    staff = actor if isinstance(actor, Staff) else None
    entry, _ = _insert_entry(competition, person, staff, E.FORMING, team_id=team.id)
    record_audit(actor, "competition_entry.join_team", "competition_entry", entry.id, to_state=entry.status,
                 org_id=entry.org_id, details={"team_id": team.id})
    if actor is not person:
        notify(entry.id, "entered_for_you")
    return entry


def join_team(person: Person, code: str) -> CompetitionTeam:
    """A worker joins with the team's code (checked against the rules like any entrant)."""
    team = db.scalar(select(T).where(T.join_code == code.strip().upper()))
    if team is None:
        raise NotFound("加入码无效，请向队长核对", code="invalid_code")
    get_competition(team.competition_id)
    _add_member(team, person, person)
    return team


def staff_add_member(staff: Staff, team_id: int, person_id: int) -> CompetitionTeam:
    """An officer adds a worker of their own union (and no one else's) to a team of their union."""
    team = managed_team(staff, team_id)
    _add_member(team, _officers_worker(staff, person_id), staff)
    return team


def remove_member(actor: Person | Staff, team_id: int, person_id: int) -> CompetitionTeam:
    """The captain (or officer) removes a member, or a member leaves, while the team is forming."""
    leaving = isinstance(actor, Person) and actor.id == person_id
    team = _get_team(team_id) if leaving else managed_team(actor, team_id)
    entry = db.scalar(select(CE).where(CE.team_id == team.id, CE.person_id == person_id,
                                       CE.status.in_(ACTIVE)))
    if entry is None:
        raise NotFound("该职工不在团队中", code="not_a_member")
    if person_id == team.captain_person_id:
        raise _team_conflict(team, "队长不能退出团队；如不再参赛，请撤回团队", "captain_cannot_leave")
    competition, unit = _lock_unit(entry)
    if _lock_team(team.id).status != TeamStatus.FORMING.value or entry.status != E.FORMING.value:
        raise _team_conflict(team, "团队已提交报名，不能再调整成员；如需调整请先撤回团队")
    _move(competition, unit, E.WITHDRAWN, actor, "leave_team" if leaving else "remove_member",
          "退出团队" if leaving else "被移出团队")
    return team


def submit_team(actor: Person | Staff, team_id: int) -> CompetitionTeam:
    """Enter the team as a unit: it takes one place per member at once, or waits as one entry.

    Like :func:`sign_up`, the caller should commit as soon as this returns.
    """
    team = managed_team(actor, team_id)
    competition = _enter(team.competition_id)
    team = _lock_team(team.id)
    if team.status != TeamStatus.FORMING.value:
        raise _team_conflict(team, "该团队已提交报名或已撤回")
    _require_open(competition, team=True)
    members = list(db.scalars(select(CE).where(CE.team_id == team.id, CE.status == E.FORMING.value)
                              .order_by(CE.id).execution_options(populate_existing=True)))
    if not competition.team_min <= len(members) <= competition.team_max:
        raise _team_conflict(team, f"团队人数须为{competition.team_min}至{competition.team_max}人，"
                                   f"目前{len(members)}人", "team_size")
    if competition.org_quota is not None:
        _take_quota(competition, Counter(e.quota_org_id for e in members if e.quota_org_id))
    status, arrival, position, last_no, at = _seat(competition, members)
    team.status, team.submitted_at = TeamStatus.SUBMITTED.value, at
    record_audit(actor, "competition_team.submit", "competition_team", team.id, from_state="forming",
                 to_state=team.status, org_id=team.org_id)
    _apply(members, status, actor, "submit_team", last_no=last_no, arrival=arrival, position=position,
           notice="team_entered", now=at)
    return team


def withdraw_team(actor: Person | Staff, team_id: int, reason: str | None = None) -> CompetitionTeam:
    """Withdraw the whole team (its places pass on to the waiting list)."""
    team = managed_team(actor, team_id)
    member = db.scalar(select(CE).where(CE.team_id == team.id, CE.status.in_(ACTIVE)).order_by(CE.id).limit(1))
    if member is None or team.status == TeamStatus.WITHDRAWN.value:
        raise _team_conflict(team, "该团队已撤回")
    if db.scalar(select(func.count(CE.id)).where(CE.team_id == team.id, CE.checked_in_at.is_not(None))):
        raise _team_conflict(team, "团队已有成员签到，不能撤回")
    competition, unit = _lock_unit(member)
    if unit[0].status == E.FORMING.value:  # every forming member leaves with the team
        unit = list(db.scalars(select(CE).where(CE.team_id == team.id, CE.status == E.FORMING.value)))
        team.status = TeamStatus.WITHDRAWN.value
    held = unit[0].status in HOLDING
    _move(competition, unit, E.WITHDRAWN, actor, "withdraw_team", reason or "团队撤回报名")
    if held:
        _fill_places(competition)
    return team


def my_team(person: Person, competition_id: int) -> CompetitionTeam:
    entry = person_entry(person, competition_id)
    if entry is None or entry.team_id is None:
        raise NotFound("您尚未加入该竞赛的团队", code="not_in_team")
    return entry.team


def list_teams(staff: Staff, competition: Competition) -> list[CompetitionTeam]:
    """Every team for the competition's organisers; an officer's own union's teams otherwise."""
    query = select(T).where(T.competition_id == competition.id).order_by(T.id)
    if not in_scope(staff, competition.organiser):
        query = query.join(T.org).where(scope_filter(staff))
    return list(db.scalars(query))


def team_view(team: CompetitionTeam) -> dict:
    entries = list(db.scalars(select(CE).where(CE.team_id == team.id).order_by(CE.id)))
    members = [e for e in entries if e.status in ACTIVE] or entries
    lead = members[0] if members else None
    competition = team.competition
    return {
        "id": team.id, "competition_id": team.competition_id, "competition_name": competition.name,
        "name": team.name, "join_code": team.join_code, "status": team.status,
        "status_label": TEAM_STATUS_LABELS[TeamStatus(team.status)], "org_id": team.org_id,
        "org_name": team.org.name, "captain_person_id": team.captain_person_id, "member_count": team.member_count,
        "team_min": competition.team_min, "team_max": competition.team_max, "submitted_at": team.submitted_at,
        "entry_status": lead.status if lead else None,
        "position": waitlist_position(lead) if lead else None,
        "offer_expires_at": lead.offer_expires_at if lead and lead.status == E.OFFERED.value else None,
        "members": [{"person_id": e.person_id, "real_name": e.person.real_name, "entry_id": e.id,
                     "status": e.status, "status_label": ENTRY_STATUS_LABELS[E(e.status)],
                     "is_captain": e.person_id == team.captain_person_id,
                     "candidate_number": e.candidate_number if e.status == E.CONFIRMED.value else None}
                    for e in members],
    }


# -- check-in --------------------------------------------------------------------------------------

def _check_in(entry: CompetitionEntry, via: str, staff: Staff | None = None) -> tuple[CompetitionEntry, bool]:
    """Check a confirmed entry in; a repeated scan changes nothing.  Answers (entry, first time?)."""
    if entry.status != E.CONFIRMED.value:
        raise invalid_state(entry, NOT_CONFIRMED_MESSAGES.get(entry.status, "当前状态不能签到"), "entry_not_confirmed")
    done = db.execute(update(CompetitionEntry).where(
        CompetitionEntry.id == entry.id, CompetitionEntry.status == E.CONFIRMED.value,
        CompetitionEntry.checked_in_at.is_(None))
        .values(checked_in_at=_now(), checked_in_via=via, checked_in_by_staff_id=staff.id if staff else None)
        .execution_options(synchronize_session=False)).rowcount == 1
    db.refresh(entry)
    if entry.checked_in_at is None:  # withdrawn in the meantime
        raise invalid_state(entry, NOT_CONFIRMED_MESSAGES.get(entry.status, "当前状态不能签到"), "entry_not_confirmed")
    if done:
        record_audit(staff, "competition_entry.check_in", "competition_entry", entry.id, org_id=entry.org_id,
                     details={"via": via})
    return entry, done


def venue_check_in(person: Person, competition: Competition, via: str) -> tuple[CompetitionEntry, bool]:
    """The worker scanned the venue's code of ``competition``."""
    entry = person_entry(person, competition.id)
    if entry is None:
        other = db.scalar(select(Competition.name).join(CompetitionEntry).where(
            CompetitionEntry.person_id == person.id, CompetitionEntry.status == E.CONFIRMED.value,
            Competition.status == "published").order_by(CompetitionEntry.id.desc()).limit(1))
        if other:
            raise Conflict("wrong_competition", f"这是“{competition.name}”的签到码，您报名的是“{other}”，请到对应赛场签到")
        raise Conflict("not_entered", f"您没有报名“{competition.name}”，不能签到")
    return _check_in(entry, via)


def code_check_in(person: Person, competition_id: int, code: str) -> tuple[CompetitionEntry, bool]:
    """The mini-program's scan of the venue code (the code must be this competition's)."""
    competition = get_competition(competition_id)
    token = code.strip().rsplit(":", 1)[-1]
    if token != competition.venue_code:
        other = db.scalar(select(Competition.name).where(Competition.venue_code == token))
        if other:
            raise Conflict("wrong_competition", f"这是“{other}”的签到码，不是“{competition.name}”的")
        raise ServiceError("invalid_code", "签到码无效，请扫描赛场张贴的签到二维码", 400)
    return venue_check_in(person, competition, "miniprogram")


def staff_check_in(staff: Staff, competition: Competition, code: str) -> tuple[CompetitionEntry, bool]:
    """Staff scanned an entrant's admission code at the venue."""
    require_role(staff, StaffRole.ORGANISER)
    token = code.strip().removeprefix(ADMISSION_PREFIX)
    entry = db.scalar(select(CompetitionEntry).where(CompetitionEntry.admission_token == token))
    if entry is None:
        raise ServiceError("invalid_code", "无效的准考证二维码", 400)
    if entry.competition_id != competition.id:
        raise Conflict("wrong_competition", f"该准考证属于“{entry.competition.name}”，不是本场竞赛",
                       current_state=entry.status)
    return _check_in(entry, "staff", staff)


# -- competitions (staff) --------------------------------------------------------------------------

def _problems_of(competition: Competition, held: int) -> dict:
    c, errors = competition, {}

    def bad(field, message):
        errors.setdefault(field, []).append(message)

    if c.signup_start >= c.signup_end:
        bad("signup_end", "报名截止时间应晚于报名开始时间")
    for field in ("theory_at", "practical_at"):
        if getattr(c, field) and getattr(c, field) < c.signup_end:
            bad(field, "比赛时间应晚于报名截止时间")
    if c.theory_weight + c.practical_weight != 100:
        bad("practical_weight", "理论与实操权重之和应为100")
    if c.entry_mode == "team" and not (c.team_min and c.team_max and c.team_min <= c.team_max):
        bad("team_max", "团队赛须填写人数范围，且最少人数不大于最多人数")
    if c.org_quota and c.org_quota > c.capacity:
        bad("org_quota", "单位名额不能大于总名额")
    if c.capacity < held:
        bad("capacity", f"已有{held}人占用名额，总名额不能少于{held}")
    return errors


def save_competition(staff: Staff, data: dict, competition: Competition | None = None) -> Competition:
    """Create or edit a competition within the staff member's subtree; 422 lists every problem."""
    require_role(staff, StaffRole.ORGANISER)
    org_id = data.get("organiser_org_id") or (competition.organiser_org_id if competition else staff.org_id)
    organiser = db.get(Organisation, org_id)
    if organiser is None or not organiser.is_within(staff.org):
        raise ServiceError("validation_error", "提交的信息有误，请检查后重试", 422,
                           errors={"organiser_org_id": ["只能选择本组织或下级组织作为主办单位"]})
    if competition is None:
        competition = Competition(organiser_org_id=org_id, venue_code=new_token(), **NEW_DEFAULTS)
        db.add(competition)
        held = 0
    else:
        competition = lock_competition(competition.id)
        held = places_held(competition.id)
        new_status = data.get("status", competition.status)
        if new_status != competition.status and new_status not in STATUS_FLOW[competition.status]:
            raise Conflict("invalid_state", "当前状态不允许此操作", current_state=competition.status)
    before = {name: getattr(competition, name) for name in COMPETITION_FIELDS} if competition.id else {}
    for name in COMPETITION_FIELDS:
        if name in data:
            setattr(competition, name, data[name])
    errors = _problems_of(competition, held)
    if errors:
        raise ServiceError("validation_error", "提交的信息有误，请检查后重试", 422, errors=errors)
    db.flush()
    changed = sorted(n for n in COMPETITION_FIELDS if before.get(n) != getattr(competition, n)) if before else None
    record_audit(staff, "competition.update" if before else "competition.create", "competition", competition.id,
                 org_id=org_id, details={"changed": changed} if changed else None)
    return competition


def list_staff_competitions(staff: Staff) -> list[Competition]:
    return list(db.scalars(select(Competition).join(Competition.organiser).where(scope_filter(staff))
                           .order_by(Competition.signup_start.desc(), Competition.id.desc())))


def list_entries(competition: Competition, status: str | None = None,
                 checked_in: bool | None = None) -> list[CompetitionEntry]:
    query = select(CompetitionEntry).where(CompetitionEntry.competition_id == competition.id)
    if status:
        query = query.where(CompetitionEntry.status == status)
    if checked_in is not None:
        query = query.where(CompetitionEntry.checked_in_at.is_not(None) if checked_in
                            else and_(CompetitionEntry.checked_in_at.is_(None),
                                      CompetitionEntry.status == E.CONFIRMED.value))
    order = ([CE.checked_in_at.desc()] if checked_in else [CE.arrival_no.is_(None), CE.arrival_no]) + [CE.id]
    return list(db.scalars(query.order_by(*order)))


def arrivals(competition: Competition) -> dict:
    expected = db.scalar(select(func.count(CE.id)).where(CE.competition_id == competition.id,
                                                         CE.status == E.CONFIRMED.value))
    arrived = list_entries(competition, checked_in=True)
    return {"expected": expected, "arrived": len(arrived), "entries": arrived}


# -- worker lists ----------------------------------------------------------------------------------

def list_competitions(trade: str | None = None, level: str | None = None, now: datetime | None = None) -> list:
    """Published (and finished) competitions: open ones first, then upcoming, then closed."""
    now = now or _now()
    rank = case((and_(Competition.status == "published", Competition.signup_start <= now,
                      Competition.signup_end >= now), 0),
                (and_(Competition.status == "published", Competition.signup_start > now), 1), else_=2)
    query = select(Competition).where(Competition.status.in_(["published", "finished"]))
    if trade:
        query = query.where(Competition.trade == trade)
    if level:
        query = query.where(Competition.level == level)
    return list(db.scalars(query.order_by(rank, Competition.signup_end, Competition.id).limit(200)))


def list_person_entries(person: Person) -> list[CompetitionEntry]:
    return list(db.scalars(select(CompetitionEntry).where(CompetitionEntry.person_id == person.id)
                           .order_by(CompetitionEntry.id.desc())))


# -- views -----------------------------------------------------------------------------------------

def entry_view(entry: CompetitionEntry, *, for_staff: bool = False, positions: dict | None = None) -> dict:
    confirmed = entry.status == E.CONFIRMED.value
    view = {
        "id": entry.id, "competition_id": entry.competition_id, "competition_name": entry.competition.name,
        "status": entry.status, "status_label": ENTRY_STATUS_LABELS[E(entry.status)],
        "position": positions.get(entry.id) if positions is not None else waitlist_position(entry),
        "reason": entry.reason,
        "offer_expires_at": entry.offer_expires_at if entry.status == E.OFFERED.value else None,
        "candidate_number": entry.candidate_number if confirmed else None,
        "admission_code": ADMISSION_PREFIX + entry.admission_token if confirmed and not for_staff else None,
        "checked_in_at": entry.checked_in_at, "created_at": entry.created_at,
        "team_id": entry.team_id, "team_name": entry.team.name if entry.team_id else None,
    }
    if for_staff:
        from server.services.profile import masked_id_number
        from server.security import mask_phone

        person = entry.person
        view.update(person_id=person.id, real_name=person.real_name, id_number_masked=masked_id_number(person),
                    phone_masked=mask_phone(person.phone), org_name=entry.org.name if entry.org else None,
                    checked_in_via=entry.checked_in_via, entered_by_staff_id=entry.entered_by_staff_id)
    return view


def competition_view(competition: Competition, person: Person | None = None, detail: bool = True,
                     staff: bool = False, counts: tuple[int, int] | None = None) -> dict:
    """``counts``: (places left, waiting-list length) when the caller counted them (lists)."""
    view = {name: getattr(competition, name) for name in COMPETITION_FIELDS if name != "eligibility"}
    free, waiting = counts or _counts([competition.id])[competition.id]
    view.update(
        id=competition.id, level_label=COMPETITION_LEVEL_LABELS[CompetitionLevel(competition.level)],
        organiser_name=competition.organiser.name, signup_open=signup_open(competition),
        places_left=free, waitlist_length=waiting,
    )
    if detail:
        view["eligibility"] = competition.eligibility or {}
        view["eligibility_text"] = eligibility_text(competition)
    if staff:
        view.update(venue_code=competition.venue_code, checkin_scene=f"checkin:{competition.id}")
    if person is not None:
        entry = person_entry(person, competition.id)
        view["my_entry"] = entry_view(entry) if entry else None
        view["my_status"] = entry.status if entry else None
    return view


def competition_list_view(competitions: list[Competition], person: Person | None = None,
                          staff: bool = False) -> list[dict]:
    counts = _counts([c.id for c in competitions]) if competitions else {}
    return [competition_view(c, person, detail=False, staff=staff, counts=counts[c.id]) for c in competitions]


def entry_notice(entry: CompetitionEntry, kind: str) -> tuple[str, str]:
    """(title, body) of the worker's notice about an entry."""
    name, deadline = entry.competition.name, fmt_local(entry.offer_expires_at, "%m月%d日%H:%M")
    notices = {
        "entered_for_you": ("已为您报名", f"所在工会已为您报名“{name}”，当前状态：{ENTRY_STATUS_LABELS[E(entry.status)]}。"),
        "offered": ("候补递补通知", f"“{name}”有名额空出，您已从候补名单递补。请在{deadline}前在小程序中确认参赛，逾期名额将顺延。"),
        "offer_reminder": ("递补确认即将截止", f"请在{deadline}前确认参加“{name}”，逾期名额将顺延给下一位候补选手。"),
        "confirmed": ("报名审核通过", f"您报名的“{name}”已审核通过，准考证号{entry.candidate_number}。"),
        "rejected": ("报名未通过审核", f"您报名的“{name}”未通过审核：{entry.reason or '不符合条件'}。"),
        "removed": ("参赛资格已取消", f"您在“{name}”的参赛资格已被取消：{entry.reason or '详情请咨询主办单位'}。"),
        "expired": ("递补名额已失效", f"您未在期限内确认参加“{name}”，递补名额已顺延。"),
        "team_entered": ("团队已提交报名", f"您所在的团队已提交“{name}”的报名，当前状态：{ENTRY_STATUS_LABELS[E(entry.status)]}。"),
        "team_confirmed": ("团队已确认参赛", f"您所在的团队已确认参加“{name}”，准考证号{entry.candidate_number}。"),
        "withdrawn": ("已退出报名", f"您在“{name}”的报名已撤回：{entry.reason or '由队长或所在工会撤回'}。"),
    }
    return notices.get(kind, ("竞赛报名状态更新", f"您报名的“{name}”状态：{ENTRY_STATUS_LABELS[E(entry.status)]}。"))

