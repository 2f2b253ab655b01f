"""Gunicorn settings for UnionHub in production (`unionhub web`, the container's `web` role).

Imports nothing from UnionHub (only the standard library, and gunicorn when
present), so it can be exec'd from anywhere: it is not part of the installed
package.  Every value can be tuned through the environment; the defaults suit
one host behind nginx or an ingress.

    UNIONHUB_BIND        address to listen on                 127.0.0.1:5000
    WEB_CONCURRENCY      worker processes                     2 * CPUs + 1, at most 8
    GUNICORN_THREADS     threads per worker (gthread)         4
    GUNICORN_MAX_REQUESTS  restart a worker after this many
                         requests (a leak guard; 0 = never)   100000
    FORWARDED_ALLOW_IPS  proxies trusted for X-Forwarded-*    127.0.0.1
"""

import os


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _cpus() -> int:
    """CPUs this process may really use: CPU affinity, then a cgroup v2 quota if one is set."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


wsgi_app = "server.wsgi:app"

bind = [os.environ.get("UNIONHUB_BIND", "").strip() or "127.0.0.1:5000"]
workers = _int_env("WEB_CONCURRENCY", min(2 * _cpus() + 1, 8))
worker_class = "gthread"
threads = _int_env("GUNICORN_THREADS", 4)

timeout = 30
graceful_timeout = 30
keepalive = 5
# A leak guard, not a tuning knob: a UnionHub worker takes about 1.5 s of CPU to start, so
# restarting one every 2,000 requests (the old value) cost the callback about as much CPU as
# handling its pushes.  100,000 requests is hours of normal traffic per worker.
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 100_000, minimum=0)  # 0 = never
max_requests_jitter = max_requests // 10

# Let X-Forwarded-Proto from the proxy set wsgi.url_scheme.  Behind a proxy on
# another host or pod, set this to its address or network (or "*" when only
# the proxy can reach the app).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1"

# Create the app in each worker, never in the master: engine pools, Redis
# connections and threads must not be shared across fork().
preload_app = False

# The worker heartbeat file lives in RAM when possible (avoids stalls on slow
# or overlay disks, and works with a read-only root filesystem).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# gunicorn 25.1+ opens a control socket (for `gunicornc`) under $HOME/.gunicorn;
# the container user's home is read-only, so use /tmp there (older versions
# ignore this setting).
if not os.access(os.path.expanduser("~"), os.W_OK):
    control_socket = "/tmp/gunicorn.ctl"

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# %(D)s is the request time in microseconds; X-Request-ID is taken from the
# response, which always carries it (the proxy's id, or one the app made).
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(D)sus '
    'rid=%({x-request-id}o)s "%(f)s" "%(a)s"'
)

try:
    from gunicorn.glogging import Logger
except ImportError:  # read outside gunicorn (tests, tooling)
    pass
else:

    class ProbeQuietLogger(Logger):
        """Leaves successful liveness/readiness probes out of the access log."""

        def access(self, resp, req, environ, request_time):
            if environ.get("PATH_INFO") in ("/healthz", "/readyz") and str(resp.status).startswith("200"):
                return
            super().access(resp, req, environ, request_time)

    logger_class = ProbeQuietLogger
