"""The competition sign-up rush on PostgreSQL, against a trivial endpoint measured in the same run.

    DATABASE_URL=postgresql://.../throwaway REDIS_URL=redis://.../N python -m tests.perf signup \\
        [--workers 5000] [--places 300] [--connections 64] [--server-workers W] [--server-threads T] [--floor]

Setup: the schema migrated into ``DATABASE_URL`` (PostgreSQL only: point it at a
throwaway database), one city federation with 50 enterprise unions, ``--workers``
distinct bound union members with mini-program tokens, one competition open for
sign-up with ``--places`` places and a warm-up competition like it; two gunicorn
servers with the production settings (``deploy/gunicorn.conf.py``: 2 x CPUs + 1
workers, 4 threads each; no access log, as in the callback benchmark), one after the other: the baseline
``tests.perf.trivial_app:app`` (GET /healthz) and ``server.wsgi:app``.  Each is
measured once its workers have booted and after a warm-up (``4 x --connections``
requests; for UnionHub, sign-ups for the warm-up competition).

Load: ``--connections`` keep-alive connections, each a thread, firing every
worker's ``POST /api/v1/competitions/{id}/entries`` once, all released
together; the baseline gets the same number of GET /healthz requests.

Prints confirmed / waitlisted / duplicate counts (from the database), each
target's requests/s, p50/p99 and CPU per request (gunicorn, the PostgreSQL
backends of the database, this process's load generator) with the share of the
machine other processes took, the load average, the throughput ratio, and the
issue's targets: exactly ``places`` confirmed, 0 duplicates, ratio >= 0.3,
p99 < 200 ms.

``--server-workers`` / ``--server-threads`` override the production config's
worker and thread counts for every server of the run.  ``--floor`` is a
diagnostic: a third server, ``tests/perf/floor_app.py``, whose sign-up path does
nothing but one durable INSERT and COMMIT, gets the same load; its ratio bounds
what any sign-up can reach with this stack on this machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .bench_callback import PRODUCTION_CONFIG, REPO, RESULTS, Gunicorn, Infra, _loadavg, machine_cpu, process_cpu

TARGET_RATIO, TARGET_P99_MS = 0.3, 200.0


def _setup(env: dict, workers: int, places: int) -> tuple[int, int, list[str]]:
    """Organisations, workers with tokens, the competition and a warm-up competition like it (10 places);
    answers (competition id, warm-up competition id, tokens)."""
    from server.app import create_app
    from server.config import Config
    from server.extensions import db
    from server.models import Competition, Person
    from server.services import auth
    from server.services.orgs import create_org

    app = create_app(Config.from_env(environ=env))
    with app.app_context():
        city = create_org(name="基准测试市总工会", kind="city")
        unions = [create_org(name=f"基准测试企业{i}工会", kind="enterprise", parent=city) for i in range(50)]
        people = [Person(real_name=f"职工{i}", id_number_hash=f"bench-{i}", org_id=unions[i % 50].id, trade="焊工",
                         skill_level="senior", is_member=True, mp_openid=f"bench-mp-{i}") for i in range(workers)]
        db.add_all(people)
        now = datetime.now(timezone.utc)
        competition, warmup = (Competition(name=name, trade="焊工", level="city", organiser_org_id=city.id,
                                           signup_start=now - timedelta(hours=1), signup_end=now + timedelta(days=1),
                                           capacity=capacity, eligibility={"member_required": True, "trades": ["焊工"]},
                                           status="published")
                               for name, capacity in (("基准测试焊工竞赛", places), ("基准测试预热竞赛", 10)))
        db.add_all([competition, warmup])
        db.flush()
        tokens = [auth.issue_token(auth.API, {"person_id": p.id}, 3600) for p in people]
        db.commit()
        ids = competition.id, warmup.id
        db.remove()
    app.extensions["unionhub"]["engine"].dispose()
    return *ids, tokens


def _fire(url: str, method: str, path: str, tokens: list[str | None], connections: int) -> dict:
    """Send one request per token over ``connections`` keep-alive connections released together."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(connections + 1)

    def run(share):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine, codes = [], Counter()
        barrier.wait()
        for token in share:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            started = time.perf_counter()
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            codes[response.status] += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    threads = [threading.Thread(target=run, args=(tokens[i::connections],)) for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(int(p * len(latencies)), len(latencies) - 1)] * 1000, 2)

    return {"requests": len(latencies), "seconds": round(elapsed, 3), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": dict(statuses)}


def _tally(database_url: str, competition_id: int) -> dict:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM competition_entries WHERE competition_id = %s "
                                     "GROUP BY status", (competition_id,)).fetchall())
        duplicates = conn.execute("SELECT count(*) FROM (SELECT person_id FROM competition_entries WHERE "
                                  "competition_id = %s GROUP BY person_id HAVING count(*) > 1) d",
                                  (competition_id,)).fetchone()[0]
    return {"confirmed": statuses.get("confirmed", 0), "waitlisted": statuses.get("waitlisted", 0),
            "duplicates": duplicates, "statuses": statuses}


def _create_floor_table(database_url: str) -> None:
    """The table of the ``--floor`` diagnostic (tests/perf/floor_app.py), in the throwaway database."""
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor_entries (id bigserial PRIMARY KEY, competition_id integer "
                     "NOT NULL, token text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")


def _backends(database_url: str) -> list[int]:
    """The PostgreSQL backends (process ids) serving the benchmark's database, this query's own excepted."""
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                               "AND pid <> pg_backend_pid()")]


def _settle(server: Gunicorn, timeout: float = 60) -> None:
    """Wait until every worker has booted: the server's processes use (almost) no CPU for half a second."""
    deadline, last = time.monotonic() + timeout, server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.cpu_seconds()
        if now - last < 0.02:
            return
        last = now


def _serve(module: str, env: dict, workdir: Path, name: str, warmup, fire, database_url: str,
           workers: int | None = None, threads: int | None = None) -> dict:
    """Start the production gunicorn setup for ``module``, wait until its workers have booted, run ``warmup(url)``
    (pools and caches filled), then ``fire(url)``, and add where the CPU went during it: the
    server's, PostgreSQL's (the backends of this database) and the load generator's (this process) per request,
    and the share of the machine other processes took meanwhile."""
    import resource

    server = Gunicorn(module, env, workdir, name, workers, threads)
    try:
        server.wait_ready()
        _settle(server)
        warmup(server.url)

        def snapshot(pids):
            me = resource.getrusage(resource.RUSAGE_SELF)
            return (server.cpu_seconds(), {pid: process_cpu(pid) for pid in pids}, me.ru_utime + me.ru_stime,
                    *machine_cpu())

        before = snapshot(_backends(database_url))
        result = fire(server.url)
        after = snapshot(set(before[1]) | set(_backends(database_url)))
    finally:
        server.stop()
    gunicorn, generator = after[0] - before[0], after[2] - before[2]
    postgres = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
    busy, total = after[3] - before[3], after[4] - before[4]
    n = result["requests"]
    result["cpu_ms_per_request"] = {"server": round(gunicorn * 1000 / n, 3), "postgres": round(postgres * 1000 / n, 3),
                                    "generator": round(generator * 1000 / n, 3)}
    others = max(0.0, busy - gunicorn - postgres - generator)
    result["other_processes_share"] = round(others / total, 3) if total else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf signup", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=5000)
    parser.add_argument("--places", type=int, default=300)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-workers", type=int, default=None,
                        help="gunicorn workers for both servers (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="threads per gunicorn worker for both servers (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--floor", action="store_true",
                        help="diagnostic: also serve tests/perf/floor_app.py (one durable INSERT per request, nothing "
                             "else) with the same settings and load, a bound on any sign-up's throughput here")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        print("bench signup: set DATABASE_URL to a throwaway PostgreSQL database (and REDIS_URL to a throwaway Redis)")
        return 2
    load_before = _loadavg()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-signup-")))
        started = time.monotonic()
        infra = Infra(stack, workdir, seed=False)
        cid, warmup_id, tokens = _setup(infra.env, args.workers, args.places)
        print(f"set up in {time.monotonic() - started:.1f} s", flush=True)
        warm = tokens[:args.connections * 4]  # sign-ups for the warm-up competition: another competition's entries
        baseline = _serve("tests.perf.trivial_app:app", infra.env, workdir, "trivial",
                          lambda url: _fire(url, "GET", "/healthz", [None] * len(warm), args.connections),
                          lambda url: _fire(url, "GET", "/healthz", [None] * len(tokens), args.connections),
                          infra.database_url, args.server_workers, args.server_threads)
        signup = _serve("server.wsgi:app", infra.env, workdir, "unionhub",
                        lambda url: _fire(url, "POST", f"/api/v1/competitions/{warmup_id}/entries", warm,
                                          args.connections),
                        lambda url: _fire(url, "POST", f"/api/v1/competitions/{cid}/entries", tokens, args.connections),
                        infra.database_url, args.server_workers, args.server_threads)
        tally = _tally(infra.database_url, cid)
        floor = None
        if args.floor:
            _create_floor_table(infra.database_url)
            floor = _serve("tests.perf.floor_app:app", infra.env, workdir, "floor",
                           lambda url: _fire(url, "POST", f"/api/v1/competitions/{warmup_id}/entries", warm,
                                             args.connections),
                           lambda url: _fire(url, "POST", f"/api/v1/competitions/{cid}/entries", tokens,
                                             args.connections),
                           infra.database_url, args.server_workers, args.server_threads)
    ratio = round(signup["rps"] / baseline["rps"], 3)
    floor_ratio = round(floor["rps"] / baseline["rps"], 3) if floor else None
    result = {"at": datetime.now().isoformat(timespec="seconds"), "workers": args.workers, "places": args.places,
              "connections": args.connections, "gunicorn": str(PRODUCTION_CONFIG.relative_to(REPO)),
              "server_workers": args.server_workers, "server_threads": args.server_threads,
              "trivial": baseline, "signup": signup, "ratio": ratio, "floor": floor, "floor_ratio": floor_ratio, **tally,
              "load_average": {"before": load_before, "after": _loadavg()}}
    checks = {f"exactly {args.places} confirmed": tally["confirmed"] == args.places,
              "0 duplicates": tally["duplicates"] == 0,
              f"every sign-up answered 201 ({args.workers})": signup["statuses"] == {201: args.workers},
              f"ratio >= {TARGET_RATIO}": ratio >= TARGET_RATIO, f"p99 < {TARGET_P99_MS:.0f} ms":
              signup["p99_ms"] < TARGET_P99_MS}
    print(f"confirmed {tally['confirmed']}, waitlisted {tally['waitlisted']}, duplicates {tally['duplicates']}")
    for name, r in (("trivial GET /healthz", baseline), ("sign-up POST", signup)) + ((("floor INSERT", floor),) if floor else ()):
        cpu = r["cpu_ms_per_request"]
        print(f"{name:22} {r['rps']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  {r['statuses']}\n"
              f"{'':22} CPU per request: server {cpu['server']} ms, PostgreSQL {cpu['postgres']} ms, "
              f"generator {cpu['generator']} ms; other processes took {r['other_processes_share']:.0%} of the machine")
    print(f"load average before {result['load_average']['before']}, after {result['load_average']['after']}")
    print(f"throughput ratio {ratio}")
    if floor:
        print(f"floor (diagnostic: one durable INSERT per request, nothing else) / trivial: {floor_ratio}; "
              f"sign-up / floor: {round(signup['rps'] / floor['rps'], 3)}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISSED'}] {name}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"signup-{int(time.time())}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if all(checks.values()) else 1
