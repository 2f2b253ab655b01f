"""The `unionhub` command: dev | web | worker | scheduler | simulator | db | seed-demo | create-admin | check.

Every command turns a configuration or connection problem into one clear
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import os
import socket
import sys

import click


class CLIError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"unionhub: error: {self.format_message()}", err=True)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def friendly_errors(func):
    """Translate the failures operators meet into one line each."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from redis.exceptions import RedisError
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

        from .config import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise CLIError(str(exc)) from None
        except (ArgumentError, NoSuchModuleError) as exc:
            raise CLIError(f"DATABASE_URL is not a usable database URL: {_one_line(exc)}") from None
        except OperationalError as exc:
            raise CLIError(f"cannot reach the database (DATABASE_URL): {_one_line(exc)}") from None
        except ProgrammingError as exc:
            raise CLIError(f"the database rejected a query; is the schema current? ({_one_line(exc)})") from None
        except RedisError as exc:
            raise CLIError(f"cannot reach Redis (REDIS_URL): {_one_line(exc)}") from None
        except ValueError as exc:
            if "Redis URL" in str(exc) or "redis://" in str(exc):
                raise CLIError(f"REDIS_URL is not a usable Redis URL: {_one_line(exc)}") from None
            raise

    return wrapper


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CLIError(f"{what} port {host}:{port} is not available ({exc.strerror or exc}); pick another with --port") from None


def make_app(check_schema: bool = True):
    """Create the app and verify that the database and Redis answer (and the schema is current)."""
    from .app import create_app
    from .db import check_schema_current

    app = create_app()
    engine = app.extensions["unionhub"]["engine"]
    with engine.connect():
        pass
    app.extensions["unionhub"]["redis"].ping()
    if check_schema:
        check_schema_current(engine)
    return app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """UnionHub: trade-union services on WeChat."""


# --------------------------------------------------------------------------- dev


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address of the web app")
@click.option("--port", default=5000, show_default=True, type=int, help="port of the web app")
@click.option("--sim-port", default=5100, show_default=True, type=int, help="port of the WeChat simulator")
@click.option("--demo/--no-demo", default=True, show_default=True, help="load the demo data (idempotent)")
@friendly_errors
def dev(host, port, sim_port, demo):
    """Run the whole system on the embedded default: web, worker, scheduler, simulator."""
    from .devserver import run_dev

    sys.exit(run_dev(host=host, port=port, sim_port=sim_port, demo=demo))


# --------------------------------------------------------------------------- production roles


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="gunicorn worker processes (default from WEB_CONCURRENCY)")
@click.option("--gunicorn-config", "gunicorn_config", default=None, type=click.Path(dir_okay=False), help="a gunicorn.conf.py to load")
@friendly_errors
def web(host, port, workers, gunicorn_config):
    """Serve the web app with gunicorn."""
    ensure_port_free(host, port, "web")
    app = make_app()  # fail fast with one line if the database, Redis or schema is wrong
    # Without REDIS_URL this process started (or found) the embedded Valkey;
    # the gunicorn workers it forks must use that one, not start their own.
    os.environ["REDIS_URL"] = app.extensions["unionhub"]["config"].REDIS_URL
    from .gunicorn_app import run_gunicorn

    run_gunicorn(bind=f"{host}:{port}", workers=workers, config_path=gunicorn_config)


@main.command()
@click.option("--queues", "queue_names", default=None, help="comma-separated queues (default: high,default,bulk)")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
@click.option("--name", default=None, help="worker name (default: host and pid)")
@friendly_errors
def worker(queue_names, burst, name):
    """Run an RQ worker (with RQ's scheduler for delayed jobs) on the UnionHub queues."""
    from rq import Queue, Worker

    from jobs import queues
    from jobs.base import set_process_app

    app = make_app()
    set_process_app(app)
    # Each job runs in a forked work horse: it must open its own database connections, never reuse the
    # parent's pooled ones (on PostgreSQL two processes on one session collide, e.g. on prepared statements).
    engine = app.extensions["unionhub"]["engine"]
    engine.dispose()
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    # Configure the ORM mappers once here: otherwise every work horse does it again at its first query.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    names = [q.strip() for q in queue_names.split(",")] if queue_names else list(queues.ALL)
    unknown = [n for n in names if n not in queues.ALL]
    if unknown:
        raise CLIError(f"unknown queue(s): {', '.join(unknown)}; known: {', '.join(queues.ALL)}")
    conn = app.extensions["unionhub"]["redis"]
    with app.app_context():
        w = Worker([Queue(n, connection=conn) for n in names], connection=conn, name=name)
        w.work(with_scheduler=True, burst=burst, logging_level=app.config["LOG_LEVEL"])


@main.command()
@friendly_errors
def scheduler():
    """Run RQ's cron scheduler with UnionHub's recurring work (safe to run more than one)."""
    from rq.cron import CronScheduler

    from jobs.cron import register_all

    app = make_app()
    cron = CronScheduler(connection=app.extensions["unionhub"]["redis"], logging_level=app.config["LOG_LEVEL"])
    register_all(cron)
    cron.start()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5100, show_default=True, type=int)
@click.option("--callback-url", default=None, help="the app's /wechat callback, for the phone page")
@friendly_errors
def simulator(host, port, callback_url):
    """Run the WeChat simulator on its own (it stands in for WeChat's servers)."""
    from .config import Config
    from .wechat.simulator import create_simulator_app
    from .wechat.simulator.serve import ThreadedServer

    ensure_port_free(host, port, "simulator")
    cfg = Config.from_env()
    sim_app = create_simulator_app(
        oa_appid=cfg.WECHAT_OA_APPID,
        oa_secret=cfg.WECHAT_OA_SECRET,
        mp_appid=cfg.WECHAT_MP_APPID,
        mp_secret=cfg.WECHAT_MP_SECRET,
        oa_token=cfg.WECHAT_OA_TOKEN,
        oa_aes_key=cfg.WECHAT_OA_AES_KEY,
        callback_url=callback_url or cfg.SIMULATOR_CALLBACK_URL,
    )
    server = ThreadedServer(sim_app, host, port)
    click.echo(f"WeChat simulator on {server.url}/sim/", err=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


# --------------------------------------------------------------------------- database and data


@main.group()
def db():
    """Schema migrations (Alembic)."""


def _migrate(direction: str, revision: str) -> None:
    from . import db as schema

    app = make_app(check_schema=False)
    engine = app.extensions["unionhub"]["engine"]
    getattr(schema, direction)(engine, revision)
    click.echo(f"database at revision {schema.current_revision(engine)}")


@db.command("upgrade")
@click.argument("revision", default="head")
@friendly_errors
def db_upgrade(revision):
    """Apply migrations up to REVISION (default: head)."""
    _migrate("upgrade", revision)


@db.command("downgrade")
@click.argument("revision")
@friendly_errors
def db_downgrade(revision):
    """Revert migrations down to REVISION."""
    _migrate("downgrade", revision)


@db.command("current")
@friendly_errors
def db_current():
    """Show the database's revision and the code's head."""
    from .db import current_revision, head_revision

    app = make_app(check_schema=False)
    click.echo(f"database: {current_revision(app.extensions['unionhub']['engine'])}  code head: {head_revision()}")


@main.command("seed-demo")
@click.option("--workers", default=300, show_default=True, type=int)
@friendly_errors
def seed_demo_cmd(workers):
    """Load the demo data (does nothing when it is already there)."""
    from .demo import seed_demo
    from .extensions import db as session

    app = make_app()
    with app.app_context():
        result = seed_demo(workers=workers)
        session.commit()
    click.echo(", ".join(f"{k}={v}" for k, v in result.items()))


@main.command("create-admin")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--org", "org_ref", required=True, help="organisation id or exact name")
@click.option("--role", default="admin", show_default=True)
@click.option("--display-name", default=None)
@friendly_errors
def create_admin(username, password, org_ref, role, display_name):
    """Create a staff account scoped to an organisation."""
    from sqlalchemy import select

    from .extensions import db as session
    from .models import Organisation, StaffRole
    from .services.staff import create_staff

    if role not in {r.value for r in StaffRole}:
        raise CLIError(f"unknown role {role!r}; one of: {', '.join(r.value for r in StaffRole)}")
    if len(password) < 8:
        raise CLIError("the password must have at least 8 characters")
    app = make_app()
    with app.app_context():
        stmt = select(Organisation).where(
            Organisation.id == int(org_ref) if org_ref.isdigit() else Organisation.name == org_ref
        )
        org = session.scalars(stmt).first()
        if org is None:
            raise CLIError(f"no organisation {org_ref!r}")
        try:
            staff = create_staff(username, password, org, role, display_name=display_name)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        session.commit()
        click.echo(f"created {role} {staff.username} (id {staff.id}) for {org.name}")


@main.command("wechat-menu")
@click.option("--file", "menu_file", default=None, type=click.Path(exists=True, dir_okay=False), help="menu JSON (default: the bundled server/wechat/menu.json)")
@click.option("--dry-run", is_flag=True, help="print the menu instead of creating it")
@friendly_errors
def wechat_menu(menu_file, dry_run):
    """Create the Official Account menu from configuration."""
    import json

    from .wechat import gateway
    from .wechat.errors import WeChatAPIError
    from .wechat.menu import load_menu

    app = make_app()
    with app.app_context():
        try:
            menu = load_menu(menu_file, app.extensions["unionhub"]["config"])
        except ValueError as exc:
            raise CLIError(f"the menu is not valid: {exc}") from None
        if dry_run:
            click.echo(json.dumps(menu, ensure_ascii=False, indent=2))
            return
        try:
            gateway.create_menu(menu)
        except WeChatAPIError as exc:
            raise CLIError(f"WeChat refused the menu: {exc.errcode} {exc.errmsg}") from None
    click.echo(f"menu created: {len(menu['button'])} buttons")


@main.command()
@friendly_errors
def check():
    """Exit 0 when the database, Redis and schema are ready; otherwise one line and exit 2."""
    make_app()
    click.echo("ready: database, Redis and schema OK")


@main.command("gen-key")
def gen_key():
    """Print a new Fernet key for ID_ENCRYPTION_KEY."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@main.command("config")
@click.option("--markdown", is_flag=True, help="print the table used in README.md")
def show_config(markdown):
    """List every environment variable with its default."""
    from .config import ENV_VARS

    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
        for name, default, meaning in ENV_VARS:
            click.echo(f"| `{name}` | {default} | {meaning} |")
        return
    for name, default, meaning in ENV_VARS:
        current = os.environ.get(name)
        shown = "(set)" if current and any(s in name for s in ("SECRET", "KEY", "TOKEN")) else current
        click.echo(f"{name}={shown or ''}    # default: {default}; {meaning}")


@main.command("retry-failed")
@click.argument("announcement_id", type=int)
@friendly_errors
def retry_failed(announcement_id):
    """Re-queue an announcement's failed deliveries whose cause was transient (permanent ones stay failed)."""
    from server.errors import ServiceError
    from server.extensions import db
    from server.services.announcements import retry_failed as retry

    app = make_app()
    with app.app_context():
        try:
            result = retry(announcement_id)
            db.commit()
        except ServiceError as exc:
            raise CLIError(f"announcement {announcement_id}: {exc.message}") from None
        finally:
            db.remove()
    click.echo(f"announcement {announcement_id}: {result['requeued']} deliveries re-queued, "
               f"{result['permanent']} permanent failures left as they are")


if __name__ == "__main__":  # pragma: no cover
    main()
