"""Competition reminders (scheduled with RQ's ``enqueue_at``), result notices and the results sweep.

``reconcile_reminders`` runs every few minutes (jobs/cron.py) and keeps the
scheduled reminder jobs in step with the competitions' dates; each reminder
job is sent at most once (see server/services/competition_reminders.py).
"""

from __future__ import annotations

from server.extensions import db
from server.models import Competition
from server.models.competition_results import CompetitionObjection
from server.services import competition_reminders as reminders
from server.services import competition_results as results
from server.services import messages
from server.timeutil import fmt_local

from .base import job

PHASE_STATES = {"published": "成绩公示", "final": "成绩确定"}


@job
def reconcile_reminders() -> dict:
    return reminders.reconcile()


@job
def send_reminder(competition_id: int, key: str) -> int | None:
    return reminders.send(competition_id, key)


@job
def notify_results(competition_id: int, phase: str, publication: int) -> int:
    """Tell every confirmed entrant their result (once per entry, phase and publication)."""
    competition = db.get(Competition, competition_id)
    scoring = results.scoring_of(competition_id)
    if competition is None or scoring.publication != publication or scoring.state != phase:
        return 0  # superseded: a newer publication, or the scores were reopened meanwhile
    rows = results.result_rows(competition)
    when = scoring.notice_ends_at if phase == "published" else scoring.finalized_at
    for row in rows:
        context = {"competition": competition.name, "state": PHASE_STATES[phase], "when": fmt_local(when),
                   "result": results.result_text(row, phase, scoring), "competition_id": competition_id}
        messages.notify(row["person_id"], "competition_result", context,
                        dedup=f"{row['entry'].id}-{phase}-{publication}")
    return len(rows)


@job
def notify_objection(objection_id: int) -> list[int]:
    """Tell the entrant how their objection was decided."""
    objection = db.get(CompetitionObjection, objection_id)
    if objection is None or objection.status == "open":
        return []
    competition = db.get(Competition, objection.competition_id)
    outcome = "异议成立，成绩将复核后重新公示" if objection.status == "upheld" else "异议不成立"
    context = {"title": "成绩异议答复", "when": fmt_local(objection.decided_at),
               "body": f"您对“{competition.name}”成绩提出的异议已处理：{outcome}。答复：{objection.answer}",
               "link": f"/pages/competition/results?id={competition.id}"}
    return messages.notify(objection.person_id, "announcement", context, dedup=f"competition-objection-{objection.id}")


@job
def finalize_results() -> list[int]:
    """Results whose notice period is over, with no open objection, become final."""
    return results.finalize_due()
