"""How a job runs: in an app context, one unit of work, commit at the end.

Jobs are plain functions taking ids.  Decorate them with :func:`job`; in a
worker process the app is created once and reused; in tests (a worker run
inside an app context) the current app is used.
"""

from __future__ import annotations

import functools
import logging

from flask import Flask, current_app, has_app_context

from server.extensions import db

log = logging.getLogger("unionhub.jobs")
_process_app: Flask | None = None


def process_app() -> Flask:
    global _process_app
    if _process_app is None:
        from server.app import create_app

        _process_app = create_app()
    return _process_app


def set_process_app(app: Flask) -> None:
    """Used by ``unionhub worker`` so the worker and its jobs share one app."""
    global _process_app
    _process_app = app


def job(func):
    """Run ``func`` as one unit of work: commit on success, roll back on any error."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return _run(func, args, kwargs)
        with process_app().app_context():
            return _run(func, args, kwargs)

    wrapper.__wrapped_job__ = func  # type: ignore[attr-defined]
    return wrapper


def _run(func, args, kwargs):
    try:
        result = func(*args, **kwargs)
        db.commit()
        return result
    except Exception:
        db.rollback()
        log.exception("job %s failed", func.__qualname__)
        raise
    finally:
        db.remove()


def app_config():
    return current_app.extensions["unionhub"]["config"]
