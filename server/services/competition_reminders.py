"""Competition reminders and trade alerts.

Which reminders a competition has is computed from its dates (:func:`planned`):

* ``open-<signup_start>``: sign-up opens, to workers who asked to be told about
  the competition's trade (:class:`CompetitionAlert`) and have no active entry;
* ``<round>-1d-<time>`` and ``<round>-1h-<time>`` for the theory exam and the
  practical round: to entrants confirmed at send time (never a withdrawn one),
  with the time, the venue and what to bring.

A key embeds the date it was computed from, so it is the schedule's
fingerprint: the reconcile job (every few minutes, ``jobs.cron``) schedules
one RQ job per key with ``enqueue_at`` under the deterministic id
``competition-reminder-<competition id>-<key>``, and cancels scheduled
reminder jobs whose key is no longer planned (a date moved, the competition
was cancelled).  A reminder whose time passed while nobody was scheduling it
is sent at once if its event is still ahead, but only the latest such one
per round (no "tomorrow" reminder ten minutes before the start).

At most once: the job first claims a :class:`CompetitionReminderRun` row
(unique per competition and key) in the transaction that writes the
notices, and each notice carries a dedup key per person (or entry) and key.
The job checks again at send time that its key is still planned.
The waiting-list offer deadline reminder belongs to ``competitions.remind_offers``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.extensions import db
from server.models import COMPETITION_LEVEL_LABELS, Competition, CompetitionEntry, CompetitionLevel, EntryStatus, Person
from server.models.competition_results import CompetitionAlert, CompetitionBrief, CompetitionReminderRun
from server.services import messages
from server.services.competitions import ACTIVE
from server.services.txn import insert_ignore_many
from server.timeutil import fmt_local

ROUNDS = {"theory": ("theory_at", "理论考试"), "practical": ("practical_at", "实操比赛")}
OFFSETS = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
JOB_PREFIX = "competition-reminder-"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%MZ")


def job_id(competition_id: int, key: str) -> str:
    return f"{JOB_PREFIX}{competition_id}-{key}"


def planned(competition: Competition) -> dict[str, datetime]:
    """``{key: when to send}`` for every reminder the competition's current dates call for."""
    if competition.status != "published":
        return {}
    plan = {f"open-{_stamp(competition.signup_start)}": competition.signup_start}
    for round_name, (field, _label) in ROUNDS.items():
        at = getattr(competition, field)
        if at is not None:
            plan.update({f"{round_name}-{off}-{_stamp(at)}": at - delta for off, delta in OFFSETS.items()})
    return plan


def _event_time(competition: Competition, key: str) -> datetime | None:
    return competition.signup_end if key.startswith("open-") else getattr(competition, ROUNDS[key.split("-")[0]][0])


def due(competition: Competition, now: datetime) -> dict[str, datetime]:
    """The planned reminders still worth sending: their event ahead; of those already late, the latest per round."""
    plan = {k: at for k, at in planned(competition).items() if now < _event_time(competition, k)}
    late: dict[str, str] = {}
    for key, at in plan.items():
        group = key.split("-")[0]
        if at <= now and (group not in late or plan[late[group]] < at):
            late[group] = key
    return {k: at for k, at in plan.items() if at > now or late.get(k.split("-")[0]) == k}


# -- reconcile -------------------------------------------------------------------------------------

def reconcile(now: datetime | None = None) -> dict:
    """(Re)schedule every competition's reminders; cancel scheduled ones no longer planned.  Safe twice."""
    from rq.job import Job, JobStatus
    from rq.registry import ScheduledJobRegistry

    from jobs.competition_reminders import send_reminder
    from jobs.queues import DEFAULT, get_queue

    now = now or _now()
    queue = get_queue(DEFAULT)
    competitions = list(db.scalars(select(Competition).where(
        Competition.status == "published",
        or_(Competition.signup_end > now, Competition.theory_at > now, Competition.practical_at > now))))
    ran = set(db.execute(select(CompetitionReminderRun.competition_id, CompetitionReminderRun.key).where(
        CompetitionReminderRun.competition_id.in_([c.id for c in competitions]))).all())
    wanted = {job_id(c.id, key): (c.id, key, at) for c in competitions for key, at in due(c, now).items()
              if (c.id, key) not in ran}
    registry = ScheduledJobRegistry(queue=queue)
    scheduled = {i for i in registry.get_job_ids() if i.startswith(JOB_PREFIX)}
    cancelled = sorted(scheduled - set(wanted))
    for stale in cancelled:
        registry.remove(stale, delete_job=True)
    added = []
    for ident, (competition_id, key, at) in sorted(wanted.items()):
        if ident in scheduled:
            continue
        if at > now:
            queue.enqueue_at(at, send_reminder, competition_id, key, job_id=ident)
        else:
            job = Job.fetch(ident, connection=queue.connection) if Job.exists(ident, queue.connection) else None
            if job is not None and job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED):
                continue
            queue.enqueue(send_reminder, competition_id, key, job_id=ident)
        added.append(ident)
    return {"scheduled": added, "cancelled": cancelled}


# -- sending ---------------------------------------------------------------------------------------

def what_to_bring(competition_id: int) -> str | None:
    brief = db.get(CompetitionBrief, competition_id)
    return brief.what_to_bring if brief else None


def set_what_to_bring(competition: Competition, text: str | None) -> str | None:
    brief = db.get(CompetitionBrief, competition.id) or CompetitionBrief(competition_id=competition.id)
    brief.what_to_bring = (text or "").strip() or None
    db.add(brief)
    db.flush()
    return brief.what_to_bring


def send(competition_id: int, key: str, now: datetime | None = None) -> int | None:
    """Send reminder ``key`` of the competition once; None when stale or already sent, else the count told."""
    now = now or _now()
    competition = db.get(Competition, competition_id)
    if competition is None or key not in planned(competition) or now >= _event_time(competition, key):
        return None
    if not _claim(competition_id, key, now):
        return None
    told = _open_alert(competition, key) if key.startswith("open-") else _round_reminder(competition, key)
    db.execute(CompetitionReminderRun.__table__.update().where(
        CompetitionReminderRun.competition_id == competition_id, CompetitionReminderRun.key == key).values(sent=told))
    return told


def _claim(competition_id: int, key: str, now: datetime) -> bool:
    """Insert the reminder's run marker; False when it exists (RETURNING: INSERT rowcount is unreliable on psycopg)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = CompetitionReminderRun.__table__
    return db.execute(insert(table).values(competition_id=competition_id, key=key, sent=0, ran_at=now)
                      .on_conflict_do_nothing(index_elements=["competition_id", "key"])
                      .returning(table.c.id)).first() is not None


def _open_alert(competition: Competition, key: str) -> int:
    entered = select(CompetitionEntry.person_id).where(CompetitionEntry.competition_id == competition.id,
                                                       CompetitionEntry.status.in_(ACTIVE))
    people = list(db.scalars(select(CompetitionAlert.person_id).where(
        CompetitionAlert.trade == competition.trade, CompetitionAlert.person_id.not_in(entered))
        .order_by(CompetitionAlert.person_id)))
    level = COMPETITION_LEVEL_LABELS[CompetitionLevel(competition.level)]
    context = {"title": "竞赛报名开始", "when": fmt_local(competition.signup_start),
               "body": f"{competition.name}（{level}，{competition.trade}）已开放报名，报名截止"
                       f"{fmt_local(competition.signup_end, '%m月%d日%H:%M')}，名额{competition.capacity}人，先到先得。",
               "link": f"/pages/competition/detail?id={competition.id}"}
    for person_id in people:
        messages.notify(person_id, "announcement", context,
                        dedup=f"competition-open-{competition.id}-{person_id}-{key}")
    return len(people)


def _round_reminder(competition: Competition, key: str) -> int:
    round_name, offset, _ = key.split("-")
    field, label = ROUNDS[round_name]
    at, bring = getattr(competition, field), what_to_bring(competition.id)
    venue = (competition.venue or "详见竞赛通知") + (f"。请携带：{bring}" if bring else "")
    context = {"competition": f"{competition.name}（{label}）", "starts": fmt_local(at, "%m月%d日%H:%M"),
               "when": fmt_local(at, "%m月%d日%H:%M"), "venue": venue, "bring": bring or "",
               "state": "明天开赛" if offset == "1d" else "即将开始", "competition_id": competition.id}
    entries = list(db.execute(select(CompetitionEntry.id, CompetitionEntry.person_id).where(
        CompetitionEntry.competition_id == competition.id, CompetitionEntry.status == EntryStatus.CONFIRMED.value)
        .order_by(CompetitionEntry.id)))
    for entry_id, person_id in entries:
        messages.notify(person_id, "competition_reminder", context, dedup=f"{entry_id}-{key}", urgent=offset == "1h")
    return len(entries)


# -- alert subscriptions ---------------------------------------------------------------------------

def alert_trades(person: Person) -> list[str]:
    return list(db.scalars(select(CompetitionAlert.trade).where(CompetitionAlert.person_id == person.id)
                           .order_by(CompetitionAlert.id)))


def set_alert_trades(person: Person, trades: list[str]) -> list[str]:
    """Replace the worker's alert trades (duplicates and blanks dropped, order kept)."""
    wanted = list(dict.fromkeys(t.strip() for t in trades if t.strip()))
    db.execute(delete(CompetitionAlert).where(CompetitionAlert.person_id == person.id,
                                              CompetitionAlert.trade.not_in(wanted)))
    insert_ignore_many(CompetitionAlert.__table__, [{"person_id": person.id, "trade": t, "created_at": _now()}
                                                    for t in wanted], ["person_id", "trade"])
    return alert_trades(person)


def clear_alerts(person: Person) -> list[str]:
    db.execute(delete(CompetitionAlert).where(CompetitionAlert.person_id == person.id))
    return []
