"""Run gunicorn in-process with UnionHub's settings (``unionhub web``)."""

from __future__ import annotations

import multiprocessing
import os
import runpy
from pathlib import Path

from gunicorn.app.base import BaseApplication

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


class UnionHubGunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)

    def load(self):
        from .wsgi import app

        return app


def run_gunicorn(bind: str, workers: int | None = None, config_path: str | None = None) -> None:
    options: dict = {
        "workers": min(2 * multiprocessing.cpu_count() + 1, 8),
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
    }
    path = Path(config_path) if config_path else DEFAULT_CONFIG
    if path.exists():
        loaded = runpy.run_path(str(path))
        options.update({k: v for k, v in loaded.items() if not k.startswith("_") and not callable(v) and k.islower()})
        options.update({k: v for k, v in loaded.items() if callable(v) and k in ("post_fork", "when_ready", "on_exit", "worker_exit", "pre_request", "post_request")})
    options["bind"] = bind
    if workers:
        options["workers"] = workers
    elif os.environ.get("WEB_CONCURRENCY"):
        options["workers"] = int(os.environ["WEB_CONCURRENCY"])
    UnionHubGunicorn(options).run()
