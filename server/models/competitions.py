"""Skill competitions (职业技能竞赛): enterprise, district and city level."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, event, func, inspect, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, TimestampMixin, utcnow
from .orgs import Organisation
from .people import Person


def new_token() -> str:
    """An unguessable token for QR payloads (venue codes, admission codes)."""
    return secrets.token_urlsafe(18)


class CompetitionLevel(str, enum.Enum):
    ENTERPRISE = "enterprise"  # 企业级
    DISTRICT = "district"  # 区级
    CITY = "city"  # 市级


COMPETITION_LEVEL_LABELS = {
    CompetitionLevel.ENTERPRISE: "企业级",
    CompetitionLevel.DISTRICT: "区级",
    CompetitionLevel.CITY: "市级",
}


class Competition(TimestampMixin, Base):
    __tablename__ = "competitions"
    __table_args__ = (
        CheckConstraint("level IN ('enterprise', 'district', 'city')", name="level"),
        CheckConstraint("entry_mode IN ('individual', 'team')", name="entry_mode"),
        CheckConstraint("capacity > 0", name="capacity"),
        CheckConstraint("status IN ('draft', 'published', 'cancelled', 'finished')", name="status"),
        CheckConstraint("signup_start < signup_end", name="signup_window"),
        CheckConstraint("org_quota_kind IN ('district', 'enterprise')", name="org_quota_kind"),
        CheckConstraint("offer_hours > 0", name="offer_hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    trade: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    organiser_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str | None] = mapped_column(String(255))
    signup_start: Mapped[datetime]
    signup_end: Mapped[datetime]
    theory_at: Mapped[datetime | None]
    practical_at: Mapped[datetime | None]
    capacity: Mapped[int]
    org_quota: Mapped[int | None]  # places per organisation, when set
    # Which union the quota counts per: the entrant's district union or enterprise union.
    org_quota_kind: Mapped[str] = mapped_column(String(16), default="enterprise", server_default="enterprise")
    # Hours a promoted waiting-list entrant has to confirm before the place passes on.
    offer_hours: Mapped[int] = mapped_column(default=48, server_default="48")
    # The token printed in the venue's check-in QR code (mini-program scan); unguessable.
    venue_code: Mapped[str | None] = mapped_column(String(64), unique=True, default=new_token)
    # The places are rows of competition_places (exactly ``capacity`` of them, kept so on insert and on every
    # capacity change by the mapper events below); arrival and candidate numbers come from competition_counters.
    eligibility: Mapped[dict] = mapped_column(JSONType, default=dict)
    entry_mode: Mapped[str] = mapped_column(String(16), default="individual")
    team_min: Mapped[int | None]
    team_max: Mapped[int | None]
    needs_approval: Mapped[bool] = mapped_column(default=False)
    theory_weight: Mapped[int] = mapped_column(default=30)  # percent
    practical_weight: Mapped[int] = mapped_column(default=70)
    status: Mapped[str] = mapped_column(String(16), default="draft")

    organiser: Mapped[Organisation] = relationship()


class EntryStatus(str, enum.Enum):
    FORMING = "forming"  # a member of a team still forming: no place, no quota, but the person's one entry
    PENDING_APPROVAL = "pending_approval"  # holds a place until the organiser decides
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    OFFERED = "offered"  # promoted from the waiting list, holds a place until it confirms or the offer expires
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    REMOVED = "removed"
    EXPIRED = "expired"  # an offer not confirmed in time


ENTRY_STATUS_LABELS = {
    EntryStatus.FORMING: "组队中",
    EntryStatus.PENDING_APPROVAL: "待审核",
    EntryStatus.CONFIRMED: "报名成功",
    EntryStatus.WAITLISTED: "候补中",
    EntryStatus.OFFERED: "递补待确认",
    EntryStatus.WITHDRAWN: "已退赛",
    EntryStatus.REJECTED: "未通过审核",
    EntryStatus.REMOVED: "已被取消资格",
    EntryStatus.EXPIRED: "递补未确认已失效",
}

#: An entry in one of these states counts in its organisation's quota ...
COUNTED_STATUSES = (EntryStatus.PENDING_APPROVAL, EntryStatus.CONFIRMED, EntryStatus.WAITLISTED, EntryStatus.OFFERED)
#: ... in one of these it is the person's one active entry in the competition ...
ACTIVE_STATUSES = COUNTED_STATUSES + (EntryStatus.FORMING,)
#: ... and in one of these it holds one of the competition's places.
HOLDING_STATUSES = (EntryStatus.PENDING_APPROVAL, EntryStatus.CONFIRMED, EntryStatus.OFFERED)

_ACTIVE_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES) + ")"
#: Entries no longer waiting (or never): every state but waitlisted and forming.
SETTLED_STATUSES = tuple(s for s in EntryStatus if s not in (EntryStatus.WAITLISTED, EntryStatus.FORMING))
_SETTLED_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in SETTLED_STATUSES) + ")"


class TeamStatus(str, enum.Enum):
    FORMING = "forming"  # members join with the code
    SUBMITTED = "submitted"  # entered as a unit: its members' entries hold places or wait together
    WITHDRAWN = "withdrawn"  # withdrawn by its captain or officer (or every member's entry ended)


TEAM_STATUS_LABELS = {TeamStatus.FORMING: "组队中", TeamStatus.SUBMITTED: "已提交报名", TeamStatus.WITHDRAWN: "已撤回"}


class CompetitionTeam(TimestampMixin, Base):
    """A team for a team competition: created by a worker (its captain) or an enterprise union officer."""

    __tablename__ = "competition_teams"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s.value}'" for s in TeamStatus) + ")", name="status"),
        CheckConstraint("member_count >= 0", name="member_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    join_code: Mapped[str] = mapped_column(String(16), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))  # the captain's or the officer's union
    captain_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(16), default=TeamStatus.FORMING.value)
    # Members with an active entry, kept by a conditional UPDATE (never above the competition's team_max).
    member_count: Mapped[int] = mapped_column(default=0, server_default="0")
    submitted_at: Mapped[datetime | None]

    competition: Mapped[Competition] = relationship()
    org: Mapped[Organisation] = relationship()


class CompetitionQuotaCount(Base):
    """Active (counted) entries per competition and quota organisation: the org quota's counter."""

    __tablename__ = "competition_quota_counts"
    __table_args__ = (CheckConstraint("active_count >= 0", name="active_count"),)

    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    active_count: Mapped[int] = mapped_column(default=0, server_default="0")


class CompetitionPlace(Base):
    """One of a competition's places: a competition has exactly ``capacity`` rows, and ``entry_id`` is the entry
    holding the place (pending_approval, confirmed or offered), NULL while it is free.

    Capacity is a structural fact: an entry holds at most one place (unique ``entry_id``), and there are no more
    places than rows.  Sign-ups claim free rows with ``FOR UPDATE SKIP LOCKED`` (see
    server/services/competitions.py), so concurrent sign-ups do not queue on one row.
    """

    __tablename__ = "competition_places"
    __table_args__ = (
        Index("ix_competition_places_free", "competition_id", "place_no",
              sqlite_where=text("entry_id IS NULL"), postgresql_where=text("entry_id IS NULL")),
    )

    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    place_no: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("competition_entries.id"), unique=True)


class CompetitionCounter(Base):
    """A competition's numbering: the last arrival number and the last candidate number handed out.

    On PostgreSQL it is bumped like a sequence, in a short transaction of its own (so no request holds its row
    lock); a number whose request then fails is simply never used.  See server/services/competitions.py.
    """

    __tablename__ = "competition_counters"

    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True, autoincrement=False)
    last_arrival_no: Mapped[int] = mapped_column(default=0, server_default="0")
    last_candidate_no: Mapped[int] = mapped_column(default=0, server_default="0")


def _add_places(connection, competition_id: int, first: int, last: int) -> None:
    """Place rows ``first``..``last`` (one INSERT ... SELECT over a recursive series, on both backends)."""
    if last >= first:
        connection.execute(text(
            "WITH RECURSIVE n(x) AS (SELECT CAST(:first AS INTEGER) UNION ALL SELECT x + 1 FROM n WHERE x < :last) "
            "INSERT INTO competition_places (competition_id, place_no) SELECT :cid, x FROM n"),
            {"cid": competition_id, "first": first, "last": last})


@event.listens_for(Competition, "after_insert")
def _new_competition_places(mapper, connection, target: Competition) -> None:
    """A new competition gets its ``capacity`` places and its counters, in the same transaction."""
    connection.execute(CompetitionCounter.__table__.insert().values(competition_id=target.id))
    _add_places(connection, target.id, 1, target.capacity)


@event.listens_for(Competition, "after_update")
def _resize_places(mapper, connection, target: Competition) -> None:
    """A capacity change adds place rows, or deletes free ones (the highest numbers first).

    The services check first that the places held fit (and lock the competition); a change that would drop a
    held place fails here instead of losing it.
    """
    if not inspect(target).attrs.capacity.history.has_changes():
        return
    places = CompetitionPlace.__table__
    count, top = connection.execute(select(func.count(), func.coalesce(func.max(places.c.place_no), 0))
                                    .where(places.c.competition_id == target.id)).one()
    if target.capacity > count:
        _add_places(connection, target.id, top + 1, top + target.capacity - count)
    elif target.capacity < count:
        surplus = count - target.capacity
        free = (select(places.c.place_no).where(places.c.competition_id == target.id, places.c.entry_id.is_(None))
                .order_by(places.c.place_no.desc()).limit(surplus).scalar_subquery())
        deleted = connection.execute(places.delete().where(places.c.competition_id == target.id,
                                                           places.c.place_no.in_(free))).rowcount
        if deleted != surplus:
            raise ValueError(f"competition {target.id}: capacity {target.capacity} is below the places held")


class CompetitionEntry(TimestampMixin, Base):
    """One person's entry in one competition; ``arrival_no`` (from competition_counters) orders the waiting list.

    The partial unique index ``uq_competition_entries_active`` is what makes
    "one active entry per person and competition" a database fact.
    """

    __tablename__ = "competition_entries"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s.value}'" for s in EntryStatus) + ")", name="status"),
        Index("uq_competition_entries_active", "competition_id", "person_id", unique=True,
              sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_competition_entries_competition_status", "competition_id", "status", "arrival_no"),
        # The units no longer waiting, by arrival number: what a new waiting unit's position subtracts (sign-up's
        # numbering statement).  Small (no waiting or forming entry is in it), and the planner takes it even when
        # a rush has left the table's statistics behind, where the index above was scanned by competition only.
        Index("ix_competition_entries_settled", "competition_id", "arrival_no",
              sqlite_where=text(_SETTLED_SQL), postgresql_where=text(_SETTLED_SQL)),
        UniqueConstraint("competition_id", "candidate_number", name="uq_competition_entries_candidate_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))  # the person's union at sign-up
    quota_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))  # the union its quota counts in
    entered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # an officer on the worker's behalf
    team_id: Mapped[int | None] = mapped_column(ForeignKey("competition_teams.id"), index=True)
    # Arrival order, from competition_counters when the entry (or its team) took a place or joined the waiting
    # list; a team's members share one number.
    arrival_no: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20))
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(255))
    offer_expires_at: Mapped[datetime | None]
    candidate_number: Mapped[str | None] = mapped_column(String(16))
    admission_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)  # the QR payload's secret part
    checked_in_at: Mapped[datetime | None]
    checked_in_via: Mapped[str | None] = mapped_column(String(16))  # staff | wechat | miniprogram
    checked_in_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    #: Not a column: the waiting-list position sign-up worked out (saves a query in its answer).
    known_position = None

    competition: Mapped[Competition] = relationship()
    team: Mapped[CompetitionTeam | None] = relationship()
    person: Mapped[Person] = relationship()
    org: Mapped[Organisation | None] = relationship(foreign_keys=[org_id])

    def __repr__(self) -> str:
        return f"<CompetitionEntry {self.id} {self.status}>"
