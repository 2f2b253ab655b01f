"""Several worker processes: one token refresh per expiry (no storm), and a worker SIGKILLed mid-send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from jobs.delivery import send_deliveries, sweep_deliveries
from server.extensions import db
from server.services import messages
from server.wechat import gateway

from .conftest import CONTEXT, make_person, rows

ROOT = Path(__file__).resolve().parents[2]
WORKER = "import json, sys\nfrom jobs.delivery import send_deliveries\nprint(json.dumps(send_deliveries(json.loads(sys.argv[1]))))"


def spawn(test_environ, ids: list[int], concurrency: int) -> subprocess.Popen:
    env = {**os.environ, **test_environ, "DELIVERY_CONCURRENCY": str(concurrency), "QUIET_HOURS": "00:00-00:00"}
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(ids)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def template_deliveries(count: int) -> list[int]:
    ids = []
    for n in range(count):
        p = make_person()
        ids.append(messages.notify(p.id, "application_paid", CONTEXT, dedup=str(n))[-1])
    db.commit()
    return ids


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_worker_processes_refresh_an_expired_token_once_per_expiry(app, sim, test_environ):
    appid = app.config["WECHAT_OA_APPID"]
    ids = template_deliveries(240)
    gateway.oa_client().access_token  # cached in Redis, shared by every process
    issued = sim.token_count(appid)
    sim.configure(latency_ms=40)
    sim.expire_tokens()  # every worker starts with a token WeChat now refuses
    workers = [spawn(test_environ, ids[i::4], concurrency=6) for i in range(4)]
    wait_for(lambda: len(sim.messages()) >= 60)
    sim.expire_tokens()  # and once more while all four are sending
    expired_mid_run = len(sim.messages()) < len(ids) - 24
    outcomes = [json.loads(w.communicate(timeout=120)[0].strip().splitlines()[-1]) for w in workers]
    assert sum(o.get("sent", 0) for o in outcomes) == len(ids)
    assert sim.token_count(appid) - issued == (2 if expired_mid_run else 1)
    assert Counter(m["touser"] for m in sim.messages()).most_common(1)[0][1] == 1
    assert {d.status for d in rows(channel="oa_template")} == {"sent"}


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(sim, test_environ):
    ids = template_deliveries(60)
    sim.configure(latency_ms=250)
    worker = spawn(test_environ, ids, concurrency=4)
    wait_for(lambda: len(sim.messages()) >= 8)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    time.sleep(0.5)  # requests the dead worker had in flight reach the simulator (or not)
    in_flight = rows(status="sending")
    assert 0 < len(in_flight) <= 4  # only what was being sent is in doubt
    assert sweep_deliveries(lease_seconds=0)["unknown"] == len(in_flight)
    sim.configure(latency_ms=0)
    sent_before = len(rows(status="sent"))
    assert sent_before >= 4 and send_deliveries(ids)["sent"] == 60 - len(in_flight) - sent_before  # a new worker
    final = Counter(d.status for d in rows(channel="oa_template"))
    assert final == {"sent": 60 - len(in_flight), "unknown": len(in_flight)}
    per_user = Counter(m["touser"] for m in sim.messages())
    assert max(per_user.values()) == 1  # no duplicates
    sent_users = {d.person_id for d in rows(status="sent")}
    assert len(sent_users) <= len(per_user) <= len(sent_users) + len(in_flight)  # every sent row reached WeChat once
