"""Operators' view of the background work (admins): RQ queues, registries, failed jobs, workers, delivery stats."""

from __future__ import annotations

from datetime import timedelta

from flask.views import MethodView
from marshmallow import fields
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import func, select

from handlers.common import Blueprint, current_staff, login_required
from jobs import queues
from schemas.announcements import OpsQuerySchema
from schemas.base import Schema
from server.extensions import db, get_redis
from server.models import Delivery, utcnow
from server.services.auth import require_operator

blp = Blueprint("admin_ops", __name__, url_prefix="/api/admin/v1/ops", description="Queues and deliveries for operators (运维)")
FAILED_SHOWN = 50


class QueuesSchema(Schema):
    queues = fields.List(fields.Dict(), metadata={"description": "[{name, queued, started, failed, scheduled, deferred, finished}]"})
    failed_jobs = fields.List(fields.Dict(), metadata={"description": "latest failed jobs: id, queue, func, args, error, ended_at"})
    workers = fields.List(fields.Dict(), metadata={"description": "[{name, state, queues, current_job, last_heartbeat}]"})


class DeliveryStatsSchema(Schema):
    since = fields.DateTime()
    by_channel = fields.Dict(metadata={"description": "channel -> status -> deliveries created since"})
    held = fields.Integer(metadata={"description": "pending deliveries waiting for quiet hours or a back-off"})
    in_flight = fields.Integer(metadata={"description": "deliveries being sent now"})


def _short(text: str | None, limit: int = 300) -> str | None:
    if not text:
        return None
    last = [line for line in text.strip().splitlines() if line.strip()][-1:]  # the exception line
    return (last[0] if last else text)[:limit]


def _failed(queue: Queue) -> list[dict]:
    registry = queue.failed_job_registry
    out = []
    for job in Job.fetch_many(registry.get_job_ids(0, FAILED_SHOWN - 1), connection=queue.connection):
        if job is None:
            continue
        result = job.latest_result()
        error = getattr(result, "exc_string", None) or getattr(job, "exc_info", None)
        out.append({"id": job.id, "queue": queue.name, "func": job.func_name, "args": repr(job.args)[:200],
                    "error": _short(error), "ended_at": job.ended_at.isoformat() if job.ended_at else None})
    return out


@blp.route("/queues")
class Queues(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, QueuesSchema)
    def get(self):
        """RQ queue lengths, the started/failed/scheduled registries, the latest failed jobs and the workers."""
        require_operator(current_staff())
        conn = get_redis()
        qs = [queues.get_queue(name) for name in queues.ALL]
        listed = [{"name": q.name, "queued": q.count, "started": q.started_job_registry.count,
                   "failed": q.failed_job_registry.count, "scheduled": q.scheduled_job_registry.count,
                   "deferred": q.deferred_job_registry.count, "finished": q.finished_job_registry.count} for q in qs]
        workers = [{"name": w.name, "state": w.get_state(), "queues": w.queue_names(),
                    "current_job": w.get_current_job_id(),
                    "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None}
                   for w in Worker.all(connection=conn)]
        failed = sorted((j for q in qs for j in _failed(q)), key=lambda j: j["ended_at"] or "", reverse=True)
        return {"queues": listed, "failed_jobs": failed[:FAILED_SHOWN], "workers": workers}


@blp.route("/deliveries")
class Deliveries(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(OpsQuerySchema, location="query")
    @blp.response(200, DeliveryStatsSchema)
    def get(self, args):
        """Deliveries created in the last ``hours`` (default 24) by channel and status; held and in-flight now."""
        require_operator(current_staff())
        now = utcnow()
        since = now - timedelta(hours=args["hours"])
        by_channel: dict = {}
        for channel, status, n in db.execute(select(Delivery.channel, Delivery.status, func.count())
                                             .where(Delivery.created_at >= since)
                                             .group_by(Delivery.channel, Delivery.status)):
            by_channel.setdefault(channel, {})[status] = n
        held = db.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.status == "pending", Delivery.not_before > now)) or 0
        in_flight = db.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sending")) or 0
        return {"since": since, "by_channel": by_channel, "held": held, "in_flight": in_flight}
