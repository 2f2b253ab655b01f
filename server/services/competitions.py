"""Skill competitions: sign-up, the waiting list, offers, approval and check-in.

Places under a sign-up rush
---------------------------
Every change that takes, frees or hands out a place (sign-up, withdrawal,
approval, rejection, removal, an offer confirmed or expiring, a promotion)
first locks the competition's row, :func:`lock_competition`: ``SELECT ...
FOR UPDATE`` on PostgreSQL, a no-op ``UPDATE`` on SQLite (which takes
SQLite's single write lock at once instead of failing to upgrade a read
later).  Only then does it count and assign, in the same transaction, which
the request commits right after.  Changes to one competition are therefore
serialised on one row, pretix-style: the places counted are the places held,
and the per-organisation quota is counted the same way.  Waiting-list order
is arrival order: an entry's ``id`` is assigned by the INSERT made while
holding the lock, so id order is the order in which sign-ups got the lock.
The partial unique index ``uq_competition_entries_active`` guarantees one
active entry per person and competition even if a code path forgot to look.

Places held: ``pending_approval``, ``confirmed`` and ``offered`` entries.
The organisation quota counts every active entry (waitlisted too), so a
promotion can never push an organisation over its quota.  A place freed by a
withdrawal, rejection, removal or expired offer goes at once to the first
waitlisted entry as an *offer* (``offered``, deadline ``offer_hours``); a
capacity raise does not promote by itself: staff promote by hand.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, case, func, select, update

from server.errors import Conflict, NotFound, ServiceError
from server.extensions import db
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
from server.models.competitions import ACTIVE_STATUSES, HOLDING_STATUSES, new_token
from server.services.audit import record_audit
from server.services.auth import require_in_scope, require_role, scope_filter
from server.timeutil import CHINA, fmt_local

E = EntryStatus
ACTIVE = [s.value for s in ACTIVE_STATUSES]
HOLDING = [s.value for s in HOLDING_STATUSES]
#: The admission QR code's payload is this prefix plus the entry's unguessable token.
ADMISSION_PREFIX = "UHE:"
#: Offers due within this time get a reminder from the sweep.
OFFER_REMINDER_WINDOW = timedelta(hours=6)

COMPETITION_FIELDS = ("name", "trade", "level", "organiser_org_id", "description", "venue", "signup_start",
                      "signup_end", "theory_at", "practical_at", "capacity", "org_quota", "org_quota_kind",
                      "offer_hours", "eligibility", "entry_mode", "team_min", "team_max", "needs_approval",
                      "theory_weight", "practical_weight", "status")
#: A new competition's values where the request says nothing.
NEW_DEFAULTS = dict(status="draft", eligibility={}, entry_mode="individual", needs_approval=False, theory_weight=30,
                    practical_weight=70, offer_hours=48, org_quota_kind="enterprise", last_candidate_no=0)
#: Allowed competition status changes (PATCH status).
STATUS_FLOW = {"draft": {"published", "cancelled"}, "published": {"cancelled", "finished"},
               "cancelled": set(), "finished": set()}
#: Why an entry in a given state cannot be checked in / changed, for the worker.
NOT_CONFIRMED_MESSAGES = {
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


def invalid_state(entry: CompetitionEntry, message: str = "当前状态不允许此操作", code: str = "invalid_state") -> Conflict:
    return Conflict(code, message, current_state=entry.status)


# -- loading and locking ---------------------------------------------------------------------------

def lock_competition(competition_id: int) -> Competition:
    """The competition's row, locked for the rest of the transaction (see the module docstring)."""
    if db.get_bind().dialect.name == "sqlite":
        db.execute(update(Competition).where(Competition.id == competition_id)
                   .values(last_candidate_no=Competition.last_candidate_no, updated_at=Competition.updated_at)
                   .execution_options(synchronize_session=False))
    competition = db.scalar(select(Competition).where(Competition.id == competition_id).with_for_update()
                            .execution_options(populate_existing=True))
    if competition is None:
        raise NotFound("找不到该竞赛")
    return competition


def _locked(entry: CompetitionEntry) -> tuple[Competition, CompetitionEntry]:
    """Lock the entry's competition, then re-read the entry: always in this order (no deadlocks)."""
    competition = lock_competition(entry.competition_id)
    db.refresh(entry)
    return competition, entry


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
    return db.scalar(select(CompetitionEntry).where(
        CompetitionEntry.competition_id == competition_id, CompetitionEntry.person_id == person.id)
        .order_by(CompetitionEntry.status.in_(ACTIVE).desc(), CompetitionEntry.id.desc()).limit(1))


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

def _count(competition_id: int, statuses, **where) -> int:
    query = select(func.count()).select_from(CompetitionEntry).where(
        CompetitionEntry.competition_id == competition_id, CompetitionEntry.status.in_(statuses))
    for name, value in where.items():
        query = query.where(getattr(CompetitionEntry, name) == value)
    return db.scalar(query)


def counts(competition_ids) -> dict[int, dict[str, int]]:
    """``{competition_id: {"held": places held, "waitlisted": n}}`` in one query."""
    result = {cid: {"held": 0, "waitlisted": 0} for cid in competition_ids}
    rows = db.execute(select(CompetitionEntry.competition_id, CompetitionEntry.status, func.count())
                      .where(CompetitionEntry.competition_id.in_(list(result)),
                             CompetitionEntry.status.in_(HOLDING + [E.WAITLISTED.value]))
                      .group_by(CompetitionEntry.competition_id, CompetitionEntry.status))
    for cid, status, n in rows:
        result[cid]["waitlisted" if status == E.WAITLISTED.value else "held"] += n
    return result


def places_left(competition: Competition, held: int | None = None) -> int:
    held = _count(competition.id, HOLDING) if held is None else held
    return max(competition.capacity - held, 0)


def waitlist_positions(competition_id: int) -> dict[int, int]:
    """``{entry id: position}`` for the whole waiting list, in one query."""
    ids = db.scalars(select(CompetitionEntry.id).where(CompetitionEntry.competition_id == competition_id,
                                                       CompetitionEntry.status == E.WAITLISTED.value)
                     .order_by(CompetitionEntry.id))
    return {entry_id: n for n, entry_id in enumerate(ids, 1)}


def waitlist_position(entry: CompetitionEntry) -> int | None:
    """1 for the first on the waiting list (arrival order)."""
    if entry.status != E.WAITLISTED.value:
        return None
    if entry.known_position is not None:  # counted under the lock by sign_up
        return entry.known_position
    return db.scalar(select(func.count()).select_from(CompetitionEntry).where(
        CompetitionEntry.competition_id == entry.competition_id, CompetitionEntry.status == E.WAITLISTED.value,
        CompetitionEntry.id <= entry.id))


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
    if not (person.org and any(person.org.is_within(org) for org in _allowed_orgs(competition))):
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


def _quota_org_id(competition: Competition, person: Person) -> int | None:
    if competition.org_quota is None or person.org is None:
        return None
    ids = [int(part) for part in person.org.path.strip("/").split("/") if part]
    return db.scalar(select(Organisation.id).where(Organisation.id.in_(ids),
                                                   Organisation.kind == competition.org_quota_kind))


# -- state changes ---------------------------------------------------------------------------------

def _set_status(entry: CompetitionEntry, to: EntryStatus, actor, action: str, reason: str | None = None,
                new: bool = False) -> None:
    """Move an entry (its competition already locked), or add a ``new`` one; audit it; tell the worker when
    someone else moved it."""
    from_state, entry.status = None if new else entry.status, to.value
    if new:
        db.add(entry)
    now = _now()
    entry.status_changed_at, entry.reason = now, reason
    competition = entry.competition
    if to == E.OFFERED:
        entry.offer_expires_at = now + timedelta(hours=competition.offer_hours)
    if to == E.CONFIRMED and not entry.candidate_number:
        competition.last_candidate_no += 1
        entry.candidate_number = f"{competition.id:03d}{competition.last_candidate_no:04d}"
    db.flush()
    record_audit(actor, f"competition_entry.{action}", "competition_entry", entry.id, from_state=from_state,
                 to_state=to.value, reason=reason, org_id=entry.org_id)
    if actor is not entry.person:
        notify(entry.id, "entered_for_you" if action == "sign_up" else to.value)


def _fill_places(competition: Competition) -> list[CompetitionEntry]:
    """Offer every free place to the first waitlisted entries, in arrival order (competition locked)."""
    free = places_left(competition)
    offered = list(db.scalars(select(CompetitionEntry).where(
        CompetitionEntry.competition_id == competition.id, CompetitionEntry.status == E.WAITLISTED.value)
        .order_by(CompetitionEntry.id).limit(free))) if free else []
    for entry in offered:
        _set_status(entry, E.OFFERED, None, "promote", "候补递补")
    return offered


def _free_place(entry: CompetitionEntry, to: EntryStatus, actor, action: str, reason: str | None) -> CompetitionEntry:
    competition, entry = _locked(entry)
    allowed = ACTIVE if to in (E.WITHDRAWN, E.REMOVED) else [E.PENDING_APPROVAL.value]
    if entry.status not in allowed:
        raise invalid_state(entry)
    held = entry.status in HOLDING
    _set_status(entry, to, actor, action, reason)
    if held:
        _fill_places(competition)
    return entry


def sign_up(person: Person, competition_id: int, staff: Staff | None = None) -> CompetitionEntry:
    """Enter the person: confirmed, pending_approval (holding a place) or waitlisted; or refuse with a reason."""
    competition = get_competition(competition_id)
    if not signup_open(competition):
        raise Conflict("window_closed", "不在报名时间内" if competition.status == "published" else "该竞赛已停止报名")
    if competition.entry_mode == "team":
        raise Conflict("team_entry_required", "本竞赛以团队形式报名，请由领队或企业工会统一报名")
    existing = person_entry(person, competition_id)
    if existing is not None and existing.status in ACTIVE:
        raise Conflict("already_entered", "您已报名该竞赛", current_state=existing.status, entry_id=existing.id)
    problems = eligibility_problems(competition, person)
    if problems:
        raise ServiceError("not_eligible", "不符合报名条件：" + "；".join(p["message"] for p in problems), 403,
                           reasons=problems)
    quota_org_id = _quota_org_id(competition, person)
    # -- from here on the competition is locked until the request commits: keep it short --
    competition = lock_competition(competition_id)
    existing = person_entry(person, competition_id)
    if existing is not None and existing.status in ACTIVE:
        raise Conflict("already_entered", "您已报名该竞赛", current_state=existing.status, entry_id=existing.id)
    if quota_org_id and _count(competition.id, ACTIVE, quota_org_id=quota_org_id) >= competition.org_quota:
        raise Conflict("org_quota_full", f"您所在单位的报名名额（{competition.org_quota}人）已满")
    tally = counts([competition.id])[competition.id]
    entry = CompetitionEntry(competition=competition, person=person, org_id=person.org_id, quota_org_id=quota_org_id,
                             entered_by_staff_id=staff.id if staff else None)
    if places_left(competition, tally["held"]):
        status = E.PENDING_APPROVAL if competition.needs_approval else E.CONFIRMED
    else:
        status, entry.known_position = E.WAITLISTED, tally["waitlisted"] + 1
    # The INSERT is the one active entry (the partial unique index agrees): every path that creates
    # an active entry holds the competition's lock and has just looked for one.
    _set_status(entry, status, staff or person, "sign_up", new=True)
    return entry


def sign_up_on_behalf(staff: Staff, competition_id: int, person_id: int) -> CompetitionEntry:
    """An enterprise union officer enters a worker of their own union (and no one else's)."""
    require_role(staff, StaffRole.OFFICER)
    person = _get(Person, person_id)
    require_in_scope(staff, person.org if person else None, "找不到该职工")
    return sign_up(person, competition_id, staff)


def withdraw(person: Person, competition_id: int, reason: str | None = None) -> CompetitionEntry:
    entry = _my_active_entry(person, competition_id)
    if entry.checked_in_at is not None:
        raise invalid_state(entry, "您已签到，不能退赛")
    return _free_place(entry, E.WITHDRAWN, person, "withdraw", reason)


def confirm_offer(person: Person, competition_id: int) -> CompetitionEntry:
    """Accept a waiting-list offer before its deadline."""
    _competition, entry = _locked(_my_active_entry(person, competition_id))
    if entry.status != E.OFFERED.value:
        raise invalid_state(entry, "您没有待确认的递补名额")
    if entry.offer_expires_at <= _now():
        raise invalid_state(entry, "递补名额的确认期限已过", "offer_expired")
    _set_status(entry, E.CONFIRMED, person, "confirm_offer")
    return entry


def staff_action(staff: Staff, competition: Competition, entry_id: int, action: str,
                 reason: str | None = None) -> CompetitionEntry:
    """approve / reject a pending entry, remove an entry, or promote a waitlisted entry by hand."""
    require_role(staff, StaffRole.ORGANISER, *([StaffRole.REVIEWER] if action in ("approve", "reject") else []))
    entry = staff_entry(competition, entry_id)
    if action == "reject":
        return _free_place(entry, E.REJECTED, staff, action, reason)
    if action == "remove":
        return _free_place(entry, E.REMOVED, staff, action, reason)
    competition, entry = _locked(entry)
    wanted = E.PENDING_APPROVAL if action == "approve" else E.WAITLISTED
    if entry.status != wanted.value:
        raise invalid_state(entry)
    if action == "promote" and not places_left(competition):
        raise Conflict("no_place_free", "名额已满：请先调整竞赛名额或取消已确认的报名", current_state=entry.status)
    _set_status(entry, E.CONFIRMED if action == "approve" else E.OFFERED, staff, action, reason)
    return entry


def expire_offers(now: datetime | None = None) -> list[int]:
    """Expire offers past their deadline and pass each place on (system actor).  Safe to run twice at once."""
    now = now or _now()
    rows = db.execute(select(CompetitionEntry.id, CompetitionEntry.competition_id).where(
        CompetitionEntry.status == E.OFFERED.value, CompetitionEntry.offer_expires_at < now)
        .order_by(CompetitionEntry.competition_id, CompetitionEntry.id)).all()
    expired = []
    for entry_id, _cid in rows:
        competition, entry = _locked(db.get(CompetitionEntry, entry_id))
        if entry.status == E.OFFERED.value and entry.offer_expires_at < now:
            _set_status(entry, E.EXPIRED, None, "expire_offer", "未在期限内确认递补名额")
            _fill_places(competition)
            expired.append(entry.id)
    return expired


def remind_offers(within: timedelta = OFFER_REMINDER_WINDOW, now: datetime | None = None) -> list[int]:
    """Remind offers due within ``within`` (once each: the inbox dedup key)."""
    now = now or _now()
    ids = list(db.scalars(select(CompetitionEntry.id).where(
        CompetitionEntry.status == E.OFFERED.value, CompetitionEntry.offer_expires_at >= now,
        CompetitionEntry.offer_expires_at < now + within)))
    for entry_id in ids:
        notify(entry_id, "offer_reminder")
    return ids


def notify(entry_id: int, kind: str) -> None:
    """Tell the worker after commit (the job writes the inbox row, once per entry and kind)."""
    from jobs import queues
    from jobs.competitions import notify_entry

    queues.enqueue_after_commit(notify_entry, entry_id, kind, queue=queues.HIGH, job_id=f"notify-entry-{entry_id}-{kind}")


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
        held = _count(competition.id, HOLDING)
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
    order = CompetitionEntry.checked_in_at.desc() if checked_in else CompetitionEntry.id
    return list(db.scalars(query.order_by(order)))


def arrivals(competition: Competition) -> dict:
    expected = _count(competition.id, [E.CONFIRMED.value])
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
    }
    if for_staff:
        from server.services.profile import masked_id_number
        from server.security import mask_phone

        person = entry.person
        view.update(person_id=person.id, real_name=person.real_name, id_number_masked=masked_id_number(person),
                    phone_masked=mask_phone(person.phone), org_name=entry.org.name if entry.org else None,
                    checked_in_via=entry.checked_in_via, entered_by_staff_id=entry.entered_by_staff_id)
    return view


def competition_view(competition: Competition, person: Person | None = None, tally: dict | None = None,
                     detail: bool = True, staff: bool = False) -> dict:
    tally = tally or counts([competition.id])[competition.id]
    view = {name: getattr(competition, name) for name in COMPETITION_FIELDS if name != "eligibility"}
    view.update(
        id=competition.id, level_label=COMPETITION_LEVEL_LABELS[CompetitionLevel(competition.level)],
        organiser_name=competition.organiser.name, signup_open=signup_open(competition),
        places_left=places_left(competition, tally["held"]), waitlist_length=tally["waitlisted"],
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
    tallies = counts([c.id for c in competitions])
    return [competition_view(c, person, tallies[c.id], detail=False, staff=staff) for c in competitions]


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
    }
    return notices.get(kind, ("竞赛报名状态更新", f"您报名的“{name}”状态：{ENTRY_STATUS_LABELS[E(entry.status)]}。"))

