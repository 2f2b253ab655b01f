"""Competition scores and results: entry, locking, ranking, publication for a public notice (公示),
objections, and final results.

States (one :class:`CompetitionScoring` row per competition)::

    scoring ──lock──▶ locked ──publish──▶ published (公示) ──finalize──▶ final
       ▲                 │                     │
       └─────unlock──────┘                     │ an objection upheld
       └───────────────────────────────────────┘

Any other change answers 409 with ``current_state``.  Every change locks the
scoring row first (``SELECT ... FOR UPDATE``; on SQLite the INSERT that
creates it takes the write lock), so two staff members cannot, say, enter a
score while another locks the scores.

Arithmetic is :class:`~decimal.Decimal`, rounded half-up to 2 decimals:
the practical score is the mean of the judges' scores (without the highest
and the lowest when the competition says so and there are 3 judges or more),
rounded; the final score is ``theory × theory_weight% + practical ×
practical_weight%`` of the rounded values, rounded, so the published table
can be checked by hand.

Ranking is competition ranking ("1, 2, 2, 4") over confirmed entries with a
final score: a higher final score ranks first; on equal final scores the
higher practical score ranks first; entries equal on both share the rank.
Entries without a complete score (absent, 缺考) are listed after, unranked.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

from server.errors import Conflict, NotFound
from server.extensions import db
from server.models import Competition, CompetitionEntry, EntryStatus, Person, Staff, StaffRole
from server.models.competition_results import (
    OBJECTION_STATUS_LABELS,
    RESULT_STATE_LABELS,
    CompetitionObjection,
    CompetitionScore,
    CompetitionScoring,
)
from server.services import competitions
from server.services.audit import record_audit
from server.services.auth import require_role
from server.services.txn import insert_ignore, savepoint_or
from server.timeutil import fmt_local

CENT = Decimal("0.01")
CONFIRMED = EntryStatus.CONFIRMED.value
DEFAULTS = dict(state="scoring", drop_extremes=False, notice_days=7, publication=0)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# -- arithmetic ------------------------------------------------------------------------------------

def practical_score(scores: list[Decimal], drop_extremes: bool) -> Decimal | None:
    """The judges' mean (without the highest and lowest when asked and ≥3 judges), 2 decimals."""
    if not scores:
        return None
    kept = sorted(scores)[1:-1] if drop_extremes and len(scores) >= 3 else scores
    return _round(sum(kept, Decimal(0)) / len(kept))


def final_score(theory: Decimal | None, practical: Decimal | None, theory_weight: int,
                practical_weight: int) -> Decimal | None:
    """theory × w_t% + practical × w_p%, 2 decimals; None while a weighted part is missing."""
    if (theory_weight and theory is None) or (practical_weight and practical is None):
        return None
    return _round(((theory or 0) * theory_weight + (practical or 0) * practical_weight) / Decimal(100))


def rank(rows: list[dict]) -> list[dict]:
    """Sets ``rank`` on each row (``final`` and ``practical``): competition ranking, unranked rows last."""
    ranked = sorted((r for r in rows if r["final"] is not None),
                    key=lambda r: (r["final"], r["practical"] or 0), reverse=True)
    previous, position = None, 0
    for n, row in enumerate(ranked, 1):
        key = (row["final"], row["practical"] or 0)
        position = position if key == previous else n
        row["rank"], previous = position, key
    unranked = [r for r in rows if r["final"] is None]
    for row in unranked:
        row["rank"] = None
    return ranked + unranked


# -- the scoring row -------------------------------------------------------------------------------

def scoring_of(competition_id: int) -> CompetitionScoring:
    """The competition's scoring row, or an unsaved default one (state ``scoring``) before the first change."""
    return db.get(CompetitionScoring, competition_id) or CompetitionScoring(competition_id=competition_id, **DEFAULTS)


def _lock(competition_id: int) -> CompetitionScoring:
    now = _now()
    insert_ignore(CompetitionScoring.__table__, {"competition_id": competition_id, "created_at": now,
                                                 "updated_at": now, **DEFAULTS}, ["competition_id"])
    return db.scalar(select(CompetitionScoring).where(CompetitionScoring.competition_id == competition_id)
                     .with_for_update().execution_options(populate_existing=True))


def _conflict(scoring: CompetitionScoring, message: str, code: str = "invalid_state", **extra) -> Conflict:
    return Conflict(code, message, current_state=scoring.state, **extra)


def _require_state(scoring: CompetitionScoring, state: str, message: str) -> None:
    if scoring.state != state:
        raise _conflict(scoring, f"{message}（当前：{RESULT_STATE_LABELS[scoring.state]}）")


def _audit(staff, action: str, competition: Competition, from_state=None, to_state=None, **kw) -> None:
    record_audit(staff, f"competition_results.{action}", "competition", competition.id, from_state=from_state,
                 to_state=to_state, org_id=competition.organiser_org_id, **kw)


def _tell(competition_id: int, phase: str, publication: int) -> None:
    from jobs import queues
    from jobs.competition_reminders import notify_results

    queues.enqueue_after_commit(notify_results, competition_id, phase, publication, queue=queues.HIGH,
                                job_id=f"competition-results-{competition_id}-{phase}-{publication}")


def scoring_view(competition: Competition, scoring: CompetitionScoring | None = None) -> dict:
    s = scoring or scoring_of(competition.id)
    open_objections = db.scalar(select(func.count()).select_from(CompetitionObjection).where(
        CompetitionObjection.competition_id == competition.id, CompetitionObjection.status == "open"))
    return {"competition_id": competition.id, "state": s.state, "state_label": RESULT_STATE_LABELS[s.state],
            "drop_extremes": s.drop_extremes, "notice_days": s.notice_days, "publication": s.publication,
            "theory_weight": competition.theory_weight, "practical_weight": competition.practical_weight,
            "locked_at": s.locked_at, "published_at": s.published_at, "notice_ends_at": s.notice_ends_at,
            "finalized_at": s.finalized_at, "open_objections": open_objections}


# -- staff: settings and scores --------------------------------------------------------------------

def update_settings(staff: Staff, competition: Competition, data: dict) -> dict:
    """drop_extremes / notice_days; while scoring only (changing the rule recomputes every practical score)."""
    require_role(staff, StaffRole.ORGANISER)
    scoring = _lock(competition.id)
    _require_state(scoring, "scoring", "成绩锁定后不能修改评分规则")
    before = (scoring.drop_extremes, scoring.notice_days)
    for name in ("drop_extremes", "notice_days"):
        if name in data:
            setattr(scoring, name, data[name])
    for score in db.scalars(select(CompetitionScore).where(CompetitionScore.competition_id == competition.id)):
        _compute(score, competition, scoring)
    db.flush()
    _audit(staff, "settings", competition, details={"before": list(before), "after": [scoring.drop_extremes,
                                                                                       scoring.notice_days]})
    return scoring_view(competition, scoring)


def _compute(score: CompetitionScore, competition: Competition, scoring: CompetitionScoring) -> None:
    judged = [Decimal(j["score"]) for j in score.judge_scores or []]
    score.practical = practical_score(judged, scoring.drop_extremes)
    score.final = final_score(score.theory, score.practical, competition.theory_weight, competition.practical_weight)


def enter_scores(staff: Staff, competition: Competition, entry_id: int, data: dict) -> dict:
    """Set an entry's theory score and/or its practical scores per judge (a field left out is kept)."""
    require_role(staff, StaffRole.ORGANISER)
    entry = competitions.staff_entry(competition, entry_id)
    scoring = _lock(competition.id)
    _require_state(scoring, "scoring", "成绩已锁定，不能修改")
    db.refresh(entry)
    if entry.status != CONFIRMED:
        raise Conflict("entry_not_confirmed", "只能为报名成功的选手录入成绩", current_state=entry.status)
    score = db.get(CompetitionScore, entry.id) or CompetitionScore(entry_id=entry.id, competition_id=competition.id,
                                                                   judge_scores=[])
    before = {"theory": str(score.theory) if score.theory is not None else None, "practical": score.judge_scores}
    if "theory" in data:
        score.theory = None if data["theory"] is None else _round(data["theory"])
    if "practical" in data:
        score.judge_scores = [{"judge": j["judge"].strip(), "score": str(_round(j["score"]))}
                              for j in data["practical"]]
    score.updated_by_staff_id = staff.id
    _compute(score, competition, scoring)
    db.add(score)
    db.flush()
    record_audit(staff, "competition_results.score", "competition_entry", entry.id, org_id=entry.org_id,
                 details={"before": before, "theory": str(score.theory) if score.theory is not None else None,
                          "practical": score.judge_scores})
    return next(r for r in staff_results(competition)["rows"] if r["entry_id"] == entry.id)


def missing_scores(competition: Competition) -> list[int]:
    """Checked-in confirmed entries still lacking a weighted part of their score."""
    rows = db.execute(select(CompetitionEntry.id, CompetitionScore.final)
                      .outerjoin(CompetitionScore, CompetitionScore.entry_id == CompetitionEntry.id)
                      .where(CompetitionEntry.competition_id == competition.id, CompetitionEntry.status == CONFIRMED,
                             CompetitionEntry.checked_in_at.is_not(None))
                      .order_by(CompetitionEntry.id))
    return [entry_id for entry_id, final in rows if final is None]


def lock_scores(staff: Staff, competition: Competition) -> dict:
    """scoring → locked: no more edits.  409 scores_incomplete while a checked-in entrant lacks a score."""
    require_role(staff, StaffRole.ORGANISER)
    scoring = _lock(competition.id)
    _require_state(scoring, "scoring", "只有录入中的成绩可以锁定")
    missing = missing_scores(competition)
    if missing:
        raise _conflict(scoring, f"还有{len(missing)}名已签到选手的成绩未录入完整", "scores_incomplete", entry_ids=missing)
    scoring.state, scoring.locked_at = "locked", _now()
    _audit(staff, "lock", competition, "scoring", "locked")
    return scoring_view(competition, scoring)


def unlock_scores(staff: Staff, competition: Competition) -> dict:
    """locked → scoring (before publication; after it, only an upheld objection reopens the scores)."""
    require_role(staff, StaffRole.ORGANISER)
    scoring = _lock(competition.id)
    _require_state(scoring, "locked", "只有已锁定且未公示的成绩可以解锁")
    scoring.state, scoring.locked_at = "scoring", None
    _audit(staff, "unlock", competition, "locked", "scoring")
    return scoring_view(competition, scoring)


def publish(staff: Staff, competition: Competition, notice_days: int | None = None) -> dict:
    """locked → published for a notice period of ``notice_days`` days; entrants are told after commit."""
    require_role(staff, StaffRole.ORGANISER)
    scoring = _lock(competition.id)
    _require_state(scoring, "locked", "请先锁定成绩再公示")
    now = _now()
    scoring.notice_days = notice_days or scoring.notice_days
    scoring.state, scoring.published_at, scoring.publication = "published", now, scoring.publication + 1
    scoring.notice_ends_at, scoring.finalized_at = now + timedelta(days=scoring.notice_days), None
    _audit(staff, "publish", competition, "locked", "published", details={"notice_days": scoring.notice_days})
    _tell(competition.id, "published", scoring.publication)
    return scoring_view(competition, scoring)


def _open_objections(competition_id: int) -> int:
    return db.scalar(select(func.count()).select_from(CompetitionObjection).where(
        CompetitionObjection.competition_id == competition_id, CompetitionObjection.status == "open"))


def finalize(staff: Staff | None, competition: Competition, now: datetime | None = None) -> dict:
    """published → final once the notice period is over and no objection is open (staff, or the sweep)."""
    if staff is not None:
        require_role(staff, StaffRole.ORGANISER)
    now = now or _now()
    scoring = _lock(competition.id)
    _require_state(scoring, "published", "只有公示中的成绩可以确定为最终成绩")
    if now < scoring.notice_ends_at:
        raise _conflict(scoring, f"公示期至{fmt_local(scoring.notice_ends_at)}结束，届时方可确定最终成绩",
                        "notice_period_running", notice_ends_at=scoring.notice_ends_at.isoformat())
    if _open_objections(competition.id):
        raise _conflict(scoring, "还有未处理的成绩异议，请先答复", "objections_open")
    scoring.state, scoring.finalized_at = "final", now
    _audit(staff, "finalize", competition, "published", "final")
    _tell(competition.id, "final", scoring.publication)
    return scoring_view(competition, scoring)


def finalize_due(now: datetime | None = None) -> list[int]:
    """Finalize every published result whose notice period is over and has no open objection.  Safe twice."""
    now = now or _now()
    due = list(db.scalars(select(CompetitionScoring.competition_id).where(
        CompetitionScoring.state == "published", CompetitionScoring.notice_ends_at <= now)
        .order_by(CompetitionScoring.competition_id)))
    done = []
    for competition_id in due:
        scoring = _lock(competition_id)
        if scoring.state == "published" and scoring.notice_ends_at <= now and not _open_objections(competition_id):
            finalize(None, db.get(Competition, competition_id), now)
            done.append(competition_id)
    return done


# -- results ---------------------------------------------------------------------------------------

def result_rows(competition: Competition) -> list[dict]:
    """Every confirmed entry with its scores, ranked (see the module docstring)."""
    rows = db.execute(select(CompetitionEntry, CompetitionScore)
                      .outerjoin(CompetitionScore, CompetitionScore.entry_id == CompetitionEntry.id)
                      .where(CompetitionEntry.competition_id == competition.id, CompetitionEntry.status == CONFIRMED)
                      .order_by(CompetitionEntry.candidate_number, CompetitionEntry.id))
    return rank([{"entry": e, "person_id": e.person_id, "theory": s.theory if s else None,
                  "judge_scores": s.judge_scores if s else [], "practical": s.practical if s else None,
                  "final": s.final if s else None} for e, s in rows])


def staff_results(competition: Competition) -> dict:
    from server.services.profile import masked_id_number

    rows = []
    for row in result_rows(competition):
        entry = row.pop("entry")
        rows.append({**row, "entry_id": entry.id, "candidate_number": entry.candidate_number,
                     "real_name": entry.person.real_name, "id_number_masked": masked_id_number(entry.person),
                     "org_name": entry.org.name if entry.org else None, "checked_in": entry.checked_in_at is not None})
    return {**scoring_view(competition), "rows": rows}


def mask_name(name: str | None) -> str:
    """张*明, 李*, 欧**明: the first and last characters kept."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" * len(name) or "*"
    return name[0] + "*" if len(name) == 2 else name[0] + "*" * (len(name) - 2) + name[-1]


def public_results(competition_id: int, person: Person | None) -> dict:
    """Published or final results for the mini-program: names masked, the worker's own row marked."""
    competition = competitions.get_competition(competition_id)
    scoring = scoring_of(competition.id)
    if scoring.state not in ("published", "final"):
        raise Conflict("results_not_published", "成绩尚未公布", current_state=scoring.state)
    rows, mine = [], None
    for row in result_rows(competition):
        entry = row["entry"]
        view = {"rank": row["rank"], "name": mask_name(entry.person.real_name),
                "org_name": entry.org.name if entry.org else None, "theory": row["theory"],
                "practical": row["practical"], "final": row["final"],
                "mine": person is not None and entry.person_id == person.id}
        rows.append(view)
        mine = view if view["mine"] else mine
    objection = None
    if person is not None:
        objection = db.scalar(select(CompetitionObjection).where(
            CompetitionObjection.competition_id == competition.id, CompetitionObjection.person_id == person.id)
            .order_by(CompetitionObjection.id.desc()).limit(1))
    view = scoring_view(competition, scoring)
    return {key: view[key] for key in ("competition_id", "state", "state_label", "published_at", "notice_ends_at",
                                       "finalized_at", "theory_weight", "practical_weight")} | {
        "competition_name": competition.name, "rows": rows, "mine": mine,
        "my_objection": objection_view(objection) if objection else None,
        "can_object": bool(mine and scoring.state == "published" and _now() < scoring.notice_ends_at
                           and not (objection and objection.publication == scoring.publication)),
    }


def result_text(row: dict | None, phase: str, scoring: CompetitionScoring) -> str:
    """The worker's result in one line, for the notice."""
    if row is None or row["rank"] is None:
        text = "未取得有效成绩"
    else:
        text = f"第{row['rank']}名，总成绩{row['final']}分"
    if phase == "published":
        return f"{text}，公示至{fmt_local(scoring.notice_ends_at, '%m月%d日%H:%M')}，如有异议请在公示期内提出"
    return f"{text}（最终成绩）"


# -- objections ------------------------------------------------------------------------------------

def objection_view(o: CompetitionObjection, for_staff: bool = False) -> dict:
    view = {"id": o.id, "competition_id": o.competition_id, "entry_id": o.entry_id, "publication": o.publication,
            "text": o.text, "status": o.status, "status_label": OBJECTION_STATUS_LABELS[o.status],
            "answer": o.answer, "created_at": o.created_at, "decided_at": o.decided_at}
    if for_staff:
        entry = db.get(CompetitionEntry, o.entry_id)
        view.update(person_id=o.person_id, real_name=entry.person.real_name,
                    candidate_number=entry.candidate_number, decided_by_staff_id=o.decided_by_staff_id)
    return view


def raise_objection(person: Person, competition_id: int, text: str) -> CompetitionObjection:
    """An entrant's one objection per notice period (confirmed entrants, while the results are published)."""
    competition = competitions.get_competition(competition_id)
    entry = competitions.person_entry(person, competition.id)
    if entry is None or entry.status != CONFIRMED:
        raise Conflict("not_entered", "只有参赛选手可以对成绩提出异议",
                       **({"current_state": entry.status} if entry else {}))
    scoring = _lock(competition.id)
    if scoring.state != "published" or _now() >= scoring.notice_ends_at:
        raise _conflict(scoring, "不在成绩公示期内，不能提出异议", "not_in_notice_period")
    objection = CompetitionObjection(competition_id=competition.id, entry_id=entry.id, person_id=person.id,
                                     publication=scoring.publication, text=text.strip(), status="open")
    with savepoint_or(_conflict(scoring, "每次公示期内只能提出一次异议", "already_objected")):
        db.add(objection)
        db.flush()
    record_audit(person, "competition_results.object", "competition_objection", objection.id, to_state="open",
                 org_id=entry.org_id)
    return objection


def list_objections(competition: Competition, status: str | None = None) -> list[dict]:
    query = select(CompetitionObjection).where(CompetitionObjection.competition_id == competition.id)
    if status:
        query = query.where(CompetitionObjection.status == status)
    return [objection_view(o, for_staff=True) for o in db.scalars(query.order_by(CompetitionObjection.id))]


def decide_objection(staff: Staff, competition: Competition, objection_id: int, decision: str,
                     answer: str) -> dict:
    """upheld (the scores reopen for correction: published or locked → scoring) or dismissed; the entrant is told."""
    require_role(staff, StaffRole.ORGANISER)
    scoring = _lock(competition.id)
    objection = db.get(CompetitionObjection, objection_id) if 0 < objection_id < 2**31 else None
    if objection is None or objection.competition_id != competition.id:
        raise NotFound("找不到该异议")
    db.refresh(objection)
    if objection.status != "open":
        raise Conflict("invalid_state", "该异议已处理", current_state=objection.status)
    objection.status, objection.answer = decision, answer.strip()
    objection.decided_by_staff_id, objection.decided_at = staff.id, _now()
    record_audit(staff, "competition_results.decide_objection", "competition_objection", objection.id,
                 from_state="open", to_state=decision, reason=objection.answer, org_id=competition.organiser_org_id)
    if decision == "upheld" and scoring.state in ("published", "locked"):
        _audit(staff, "reopen", competition, scoring.state, "scoring", reason=f"objection {objection.id}")
        scoring.state, scoring.locked_at = "scoring", None
    db.flush()
    from jobs import queues
    from jobs.competition_reminders import notify_objection

    queues.enqueue_after_commit(notify_objection, objection.id, queue=queues.HIGH,
                                job_id=f"competition-objection-{objection.id}")
    return objection_view(objection, for_staff=True)
