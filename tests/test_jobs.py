"""Jobs run in a real RQ worker, in an app context, and are only enqueued after commit."""

from rq import Queue

from jobs import queues, system
from jobs.queues import enqueue_after_commit
from server.extensions import db
from server.services.orgs import create_org


def test_a_worker_runs_a_job_against_the_database(redis, run_jobs):
    create_org(name="作业测试市总工会", kind="city")
    db.commit()
    job = queues.enqueue(system.ping, "hello")
    outcome = run_jobs()
    assert outcome == {"finished": 1, "failed": 0}
    job.refresh()
    assert job.return_value()["marker"] == "hello"
    assert job.return_value()["organisations"] == 1


def test_enqueue_after_commit_waits_for_the_commit(redis, run_jobs):
    default = Queue(queues.DEFAULT, connection=redis)
    enqueue_after_commit(system.ping, "rolled-back")
    db.rollback()
    assert default.count == 0
    enqueue_after_commit(system.ping, "kept", job_id="ping-kept")
    assert default.count == 0
    db.commit()
    assert default.job_ids == ["ping-kept"]
    assert run_jobs()["finished"] == 1


def test_recurring_work_is_registered():
    from jobs.cron import RECURRING, register_all

    registered = []

    class FakeCron:
        def register(self, func, queue_name, **when):
            registered.append((func.__name__, queue_name, when))

    register_all(FakeCron())
    assert len(registered) == len(RECURRING)
    assert all(q in queues.ALL for _, q, _ in registered)
