"""Recurring work, registered with RQ's cron scheduler (`unionhub scheduler`).

Each entry is data: (function, queue, interval in seconds or cron string).
Later areas add their sweeps here (deadline reminders, expiring returned
applications, waiting-list confirmations, stuck deliveries).  Every job
listed must be safe to run twice at once: two schedulers may be running.
"""

from __future__ import annotations

from . import broadcast, competition_reminders, competitions, delivery, notifications, queues, system, wechat

#: (job function, queue name, {"interval": seconds} or {"cron": "m h dom mon dow"})
RECURRING: list[tuple] = [
    (system.heartbeat, queues.DEFAULT, {"interval": 300}),
    (wechat.store_pushes, queues.DEFAULT, {"interval": 30}),
    (notifications.sweep_returned_applications, queues.DEFAULT, {"interval": 900}),
    (competitions.sweep_offers, queues.DEFAULT, {"interval": 300}),
    (competition_reminders.reconcile_reminders, queues.DEFAULT, {"interval": 180}),
    (competition_reminders.finalize_results, queues.DEFAULT, {"interval": 600}),
    (delivery.sweep_deliveries, queues.DEFAULT, {"interval": 30}),
    (broadcast.sweep_broadcasts, queues.DEFAULT, {"interval": 30}),
]


def register_all(scheduler) -> None:
    for func, queue_name, when in RECURRING:
        scheduler.register(func, queue_name=queue_name, **when)
