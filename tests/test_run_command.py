"""The README's run command really starts the whole system, and Ctrl-C really stops it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from redis import Redis
from rq import Queue

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, proc, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "unionhub dev exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout}s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_dev_starts_everything_and_stops_cleanly(tmp_path):
    web_port, sim_port = free_port(), free_port()
    # The embedded default: no DATABASE_URL, no REDIS_URL, no secrets.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("WECHAT_")}
    env.update(UNIONHUB_INSTANCE_DIR=str(tmp_path / "instance"), UNIONHUB_ENV="development", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "dev", "--port", str(web_port), "--sim-port", str(sim_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids = {}
    try:
        ready = wait_for(f"http://127.0.0.1:{web_port}/readyz", proc)
        assert ready == {"status": "ok", "database": "ok", "redis": "ok"}
        assert (tmp_path / "instance" / "unionhub.db").exists()
        pids = json.loads((tmp_path / "instance" / "dev-pids.json").read_text())
        assert {"web", "worker", "scheduler", "simulator", "valkey"} <= set(pids)

        # The simulator answers, and the app's demo data is there.
        with urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/sim/messages", timeout=5) as response:
            assert "messages" in json.loads(response.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/v1/orgs?kind=city", timeout=5) as response:
            assert json.loads(response.read())[0]["name"] == "江城市总工会"

        # A job enqueued on the embedded Valkey is run by the dev worker.
        redis_url = (tmp_path / "instance" / "valkey" / "url").read_text().strip()
        queue = Queue("default", connection=Redis.from_url(redis_url))
        job = queue.enqueue("jobs.system.ping", "from-test")
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) not in ("finished", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert job.get_status() == "finished"
        assert job.return_value()["marker"] == "from-test"
        assert job.return_value()["organisations"] >= 10
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Demo admin login" in output and "/api/docs" in output and "/sim/" in output
    time.sleep(0.5)
    still_running = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not still_running, f"orphan processes after Ctrl-C: {still_running}"
