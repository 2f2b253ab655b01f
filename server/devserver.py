"""`unionhub dev`: the whole system on one machine, started and stopped as one.

It starts an embedded Valkey (unless REDIS_URL is set), applies migrations,
loads the demo data, then runs the WeChat simulator, the web app (gunicorn),
one RQ worker (with RQ's scheduler) and the cron scheduler as child
processes.  Ctrl-C (or SIGTERM) stops every child and the Valkey server;
children also die with the supervisor if it is killed outright
(PR_SET_PDEATHSIG), so no process is left behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import click

from .cli import CLIError, ensure_port_free

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Supervisor:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.valkey = None
        self.stopping = False

    def spawn(self, name: str, *args: str) -> None:
        cmd = [sys.executable, "-m", "server.cli", *args]
        self.children[name] = subprocess.Popen(cmd, env=self.env, preexec_fn=_die_with_parent)

    def pids(self) -> dict[str, int]:
        pids = {name: p.pid for name, p in self.children.items()}
        if self.valkey is not None and self.valkey._process is not None:
            pids["valkey"] = self.valkey._process.pid
        return pids

    def stop(self) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.valkey is not None:
            try:
                self.valkey.stop()
            except Exception:  # already gone
                pass
            self.valkey = None


def _wait_ready(url: str, supervisor: Supervisor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in supervisor.children.items():
            if proc.poll() is not None:
                raise CLIError(f"{name} exited during start-up (status {proc.returncode}); see the messages above")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise CLIError(f"{url} did not become ready within {timeout:.0f}s")


def run_dev(host: str, port: int, sim_port: int, demo: bool = True) -> int:
    from .app import create_app
    from .config import Config
    from .db import upgrade
    from .embedded import start_embedded_valkey

    ensure_port_free(host, port, "web")
    ensure_port_free(host, sim_port, "simulator")
    cfg = Config.from_env()
    env = dict(os.environ)
    env["UNIONHUB_INSTANCE_DIR"] = str(cfg.INSTANCE_DIR)
    sim_url = f"http://{host}:{sim_port}"
    env.setdefault("WECHAT_API_BASE", sim_url)
    env.setdefault("SIMULATOR_CALLBACK_URL", f"http://{host}:{port}/wechat")
    env.setdefault("WEB_CONCURRENCY", "2")
    env["PYTHONUNBUFFERED"] = "1"

    supervisor = Supervisor(env)

    def _on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        if not cfg.REDIS_URL:
            supervisor.valkey = start_embedded_valkey(cfg.INSTANCE_DIR)
            env["REDIS_URL"] = supervisor.valkey.connection_url
        os.environ.update({k: env[k] for k in ("REDIS_URL", "WECHAT_API_BASE", "UNIONHUB_INSTANCE_DIR") if k in env})

        app = create_app()
        upgrade(app.extensions["unionhub"]["engine"])
        seeded = None
        if demo:
            from .demo import seed_demo
            from .extensions import db

            with app.app_context():
                seeded = seed_demo()
                db.commit()
        app.extensions["unionhub"]["engine"].dispose()

        supervisor.spawn("simulator", "simulator", "--host", host, "--port", str(sim_port))
        supervisor.spawn("web", "web", "--host", host, "--port", str(port))
        supervisor.spawn("worker", "worker", "--name", f"dev-worker-{os.getpid()}")
        supervisor.spawn("scheduler", "scheduler")
        (cfg.INSTANCE_DIR / "dev-pids.json").write_text(json.dumps(supervisor.pids()))

        _wait_ready(f"{sim_url}/sim/", supervisor)
        _wait_ready(f"http://{host}:{port}/readyz", supervisor)
        _banner(host, port, sim_url, env["REDIS_URL"], cfg, seeded)

        while True:
            for name, proc in supervisor.children.items():
                if proc.poll() is not None:
                    click.echo(f"unionhub: error: {name} stopped unexpectedly (status {proc.returncode}); stopping everything", err=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping UnionHub...", err=True)
        return 0
    finally:
        supervisor.stop()
        click.echo("all UnionHub processes stopped", err=True)


def _banner(host, port, sim_url, redis_url, cfg, seeded) -> None:
    from .demo import DEMO_ADMIN_PASSWORD, DEMO_ADMIN_USERNAME

    base = f"http://{host}:{port}"
    lines = [
        "",
        "UnionHub is running (embedded default)" if "sqlite" in cfg.DATABASE_URL else "UnionHub is running",
        f"  API docs          {base}/api/docs",
        f"  OpenAPI document  {base}/api/openapi.json",
        f"  Health            {base}/healthz   {base}/readyz",
        f"  Queue console     {base}/admin/rq/",
        f"  WeChat callback   {base}/wechat",
        f"  WeChat simulator  {sim_url}/sim/",
        f"  Database          {cfg.DATABASE_URL}",
        f"  Redis             {redis_url}",
        f"  Demo admin login  {DEMO_ADMIN_USERNAME} / {DEMO_ADMIN_PASSWORD}",
    ]
    if seeded:
        lines.append("  Demo data         " + ", ".join(f"{k}={v}" for k, v in seeded.items()))
    lines += ["Press Ctrl-C to stop.", ""]
    click.echo("\n".join(lines), err=True)
