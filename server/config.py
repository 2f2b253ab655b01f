"""Settings, read from environment variables only.

With no variable set, UnionHub runs on its embedded default: SQLite and an
embedded Valkey server under ``instance/``, the WeChat simulator on
127.0.0.1:5100, and development secrets generated once into
``instance/dev-secrets.json`` (so that encrypted demo data stays readable
across restarts).  With ``UNIONHUB_ENV=production`` every secret must be set
explicitly; a missing one stops start-up with a clear message.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path

#: Every environment variable UnionHub reads, with its default and meaning.
#: README.md's configuration table is generated from the same facts
#: (``unionhub config --markdown``), so the two cannot drift apart.
ENV_VARS: list[tuple[str, str, str]] = [
    ("UNIONHUB_ENV", "development", "`development`, `test` or `production`; production refuses to start without every secret"),
    ("UNIONHUB_INSTANCE_DIR", "./instance", "where the embedded default keeps SQLite, Valkey data, uploads and dev secrets"),
    ("DATABASE_URL", "sqlite:///<instance>/unionhub.db", "SQLAlchemy URL; `postgresql://...` in production (psycopg 3 is used)"),
    ("REDIS_URL", "embedded Valkey under <instance>/valkey", "Redis URL for RQ queues, the access-token cache, dedup keys and rate limits"),
    ("SECRET_KEY", "generated into dev-secrets.json", "signs session and API tokens"),
    ("ID_ENCRYPTION_KEY", "generated into dev-secrets.json", "Fernet key(s) for ID numbers at rest; several comma-separated keys rotate (first encrypts)"),
    ("WECHAT_OA_APPID", "wx_sim_oa_appid", "Official Account appid"),
    ("WECHAT_OA_SECRET", "sim-oa-secret", "Official Account app secret"),
    ("WECHAT_OA_TOKEN", "unionhub-dev-token", "Official Account callback token (signature check)"),
    ("WECHAT_OA_AES_KEY", "generated into dev-secrets.json", "43-character EncodingAESKey for compatible and safe mode"),
    ("WECHAT_MP_APPID", "wx_sim_mp_appid", "mini-program appid"),
    ("WECHAT_MP_SECRET", "sim-mp-secret", "mini-program app secret"),
    ("WECHAT_API_BASE", "http://127.0.0.1:5100", "base URL of WeChat's API: the simulator in dev and tests, https://api.weixin.qq.com in production"),
    ("WECOM_API_BASE", "same as WECHAT_API_BASE", "base URL of the WeCom group-bot webhook API (https://qyapi.weixin.qq.com in production)"),
    ("WECHAT_HTTP_TIMEOUT", "5", "seconds before any call to WeChat gives up"),
    ("WECHAT_CALLBACK_MAX_AGE", "300", "seconds a callback's timestamp may differ from now"),
    ("WECHAT_CALLBACK_MAX_BYTES", "65536", "largest callback body accepted"),
    ("WECHAT_BOT_BUDGET_MS", "800", "time a bot may take before the callback answers \"处理中\" and the answer follows as a customer-service message"),
    ("WECHAT_STORE_DEFER_MS", "10", "milliseconds a push's stored answer and push-log record may wait to travel with the next claim in one Redis round trip; 0 sends each at once"),
    ("WECHAT_SHARED_ANSWER_SECONDS", "10", "seconds a sender-independent bot answer (open programmes, open competitions) is reused per process; 0 turns it off"),
    ("WECHAT_CS_MESSAGE_GRANT", "172800/20", "customer-service messages allowed after a worker's message: `seconds/count` (WeChat: 20 within 48 hours)"),
    ("WECHAT_CS_EVENT_GRANT", "60/3", "customer-service messages allowed after a menu click, QR scan or follow: `seconds/count` (WeChat: 3 within a minute)"),
    ("WECHAT_MINIPROGRAM_STATE", "formal", "which mini-program version a subscribe message opens: `formal`, `trial` or `developer`"),
    ("WECHAT_MINIPROGRAM_PATH_PREFIX", "pages", "prefix of mini-program page paths used in links from bots"),
    ("UPLOAD_DIR", "<instance>/uploads", "where proof documents are stored (outside the web root)"),
    ("UPLOAD_MAX_BYTES", "10485760", "largest accepted proof document"),
    ("API_TOKEN_TTL", "604800", "seconds a mini-program login token lives"),
    ("STAFF_TOKEN_TTL", "43200", "seconds a staff token lives"),
    ("QUIET_HOURS", "21:30-08:00", "Asia/Shanghai hours in which non-urgent messages wait"),
    ("MESSAGE_TEMPLATE_IDS", "<channel>_<kind> (the simulator accepts any)", "template ids per message kind and channel: `application_approved.oa_template=ID,application_approved.mp_subscribe=ID,...`"),
    ("WECHAT_SEND_RATE", "200", "messages per second per WeChat send API (template, subscribe, customer service), shared by all workers"),
    ("WECOM_BOT_PER_MINUTE", "20", "messages a minute per WeCom group bot (WeCom's own limit is 20)"),
    ("DELIVERY_CONCURRENCY", "16", "concurrent sends per delivery job (threads over the pooled HTTP session)"),
    ("DELIVERY_MAX_ATTEMPTS", "5", "attempts before a transiently failing delivery is marked failed"),
    ("DELIVERY_RETRY_SECONDS", "30", "first back-off after a transient failure (doubles with each attempt)"),
    ("DELIVERY_LEASE_SECONDS", "120", "seconds a claimed delivery may stay `sending` before the sweeper marks it `unknown`"),
    ("LOG_LEVEL", "INFO", "Python logging level"),
    ("SIMULATOR_CALLBACK_URL", "http://127.0.0.1:5000/wechat", "where the simulator's phone page posts pushes (the app's callback)"),
]

PRODUCTION_REQUIRED = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ID_ENCRYPTION_KEY",
    "WECHAT_OA_APPID",
    "WECHAT_OA_SECRET",
    "WECHAT_OA_TOKEN",
    "WECHAT_OA_AES_KEY",
    "WECHAT_MP_APPID",
    "WECHAT_MP_SECRET",
)


class ConfigError(RuntimeError):
    """Raised for a configuration that cannot work; the CLI prints it on one line."""


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _dev_secrets(instance_dir: Path) -> dict[str, str]:
    """Secrets for the embedded default, generated once and kept in instance/."""
    path = instance_dir / "dev-secrets.json"
    data: dict[str, str] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    changed = False
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "ID_ENCRYPTION_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "WECHAT_OA_AES_KEY": lambda: base64.b64encode(os.urandom(32)).decode()[:43],
    }
    for key, make in wanted.items():
        if not data.get(key):
            data[key] = make()
            changed = True
    if changed:
        instance_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return data


@dataclass
class Config:
    ENV: str = "development"
    INSTANCE_DIR: Path = field(default_factory=lambda: Path("instance").resolve())
    DATABASE_URL: str = ""
    REDIS_URL: str | None = None
    SECRET_KEY: str = ""
    ID_ENCRYPTION_KEY: str = ""
    WECHAT_OA_APPID: str = "wx_sim_oa_appid"
    WECHAT_OA_SECRET: str = "sim-oa-secret"
    WECHAT_OA_TOKEN: str = "unionhub-dev-token"
    WECHAT_OA_AES_KEY: str = ""
    WECHAT_MP_APPID: str = "wx_sim_mp_appid"
    WECHAT_MP_SECRET: str = "sim-mp-secret"
    WECHAT_API_BASE: str = "http://127.0.0.1:5100"
    WECOM_API_BASE: str = ""
    WECHAT_HTTP_TIMEOUT: int = 5
    WECHAT_CALLBACK_MAX_AGE: int = 300
    WECHAT_CALLBACK_MAX_BYTES: int = 65536
    WECHAT_BOT_BUDGET_MS: int = 800
    WECHAT_MINIPROGRAM_PATH_PREFIX: str = "pages"
    WECHAT_SHARED_ANSWER_SECONDS: int = 10
    WECHAT_STORE_DEFER_MS: int = 10
    WECHAT_CS_MESSAGE_GRANT: str = "172800/20"
    WECHAT_MINIPROGRAM_STATE: str = "formal"
    WECHAT_CS_EVENT_GRANT: str = "60/3"
    UPLOAD_DIR: Path = field(default_factory=lambda: Path("instance/uploads").resolve())
    UPLOAD_MAX_BYTES: int = 10 * 1024 * 1024
    API_TOKEN_TTL: int = 7 * 24 * 3600
    STAFF_TOKEN_TTL: int = 12 * 3600
    QUIET_HOURS: str = "21:30-08:00"
    MESSAGE_TEMPLATE_IDS: str = ""
    WECHAT_SEND_RATE: int = 200
    WECOM_BOT_PER_MINUTE: int = 20
    DELIVERY_CONCURRENCY: int = 16
    DELIVERY_MAX_ATTEMPTS: int = 5
    DELIVERY_RETRY_SECONDS: int = 30
    DELIVERY_LEASE_SECONDS: int = 120
    LOG_LEVEL: str = "INFO"
    SIMULATOR_CALLBACK_URL: str = "http://127.0.0.1:5000/wechat"
    TESTING: bool = False

    @property
    def is_production(self) -> bool:
        return self.ENV == "production"

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.REDIS_URL

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Config":
        env = dict(os.environ if environ is None else environ)
        mode = env.get("UNIONHUB_ENV", "development").strip() or "development"
        if mode not in ("development", "test", "production"):
            raise ConfigError(f"UNIONHUB_ENV must be development, test or production, got {mode!r}")
        if mode == "production":
            missing = [name for name in PRODUCTION_REQUIRED if not env.get(name)]
            if missing:
                raise ConfigError(
                    "production mode needs these environment variables set: " + ", ".join(missing)
                )
        instance_dir = Path(env.get("UNIONHUB_INSTANCE_DIR") or "instance").resolve()
        generated: dict[str, str] = {}
        if mode != "production" and not all(
            env.get(k) for k in ("SECRET_KEY", "ID_ENCRYPTION_KEY", "WECHAT_OA_AES_KEY")
        ):
            generated = _dev_secrets(instance_dir)

        def pick(name: str, default: str = "") -> str:
            value = env.get(name)
            if value:
                return value
            return generated.get(name, default)

        cfg = cls(
            ENV=mode,
            INSTANCE_DIR=instance_dir,
            DATABASE_URL=env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'unionhub.db'}",
            REDIS_URL=env.get("REDIS_URL") or None,
            SECRET_KEY=pick("SECRET_KEY"),
            ID_ENCRYPTION_KEY=pick("ID_ENCRYPTION_KEY"),
            WECHAT_OA_APPID=pick("WECHAT_OA_APPID", cls.WECHAT_OA_APPID),
            WECHAT_OA_SECRET=pick("WECHAT_OA_SECRET", cls.WECHAT_OA_SECRET),
            WECHAT_OA_TOKEN=pick("WECHAT_OA_TOKEN", cls.WECHAT_OA_TOKEN),
            WECHAT_OA_AES_KEY=pick("WECHAT_OA_AES_KEY"),
            WECHAT_MP_APPID=pick("WECHAT_MP_APPID", cls.WECHAT_MP_APPID),
            WECHAT_MP_SECRET=pick("WECHAT_MP_SECRET", cls.WECHAT_MP_SECRET),
            WECHAT_API_BASE=(env.get("WECHAT_API_BASE") or cls.WECHAT_API_BASE).rstrip("/"),
            WECOM_API_BASE=(env.get("WECOM_API_BASE") or env.get("WECHAT_API_BASE") or cls.WECHAT_API_BASE).rstrip("/"),
            WECHAT_HTTP_TIMEOUT=_int(env, "WECHAT_HTTP_TIMEOUT", 5),
            WECHAT_CALLBACK_MAX_AGE=_int(env, "WECHAT_CALLBACK_MAX_AGE", 300),
            WECHAT_CALLBACK_MAX_BYTES=_int(env, "WECHAT_CALLBACK_MAX_BYTES", 65536),
            WECHAT_BOT_BUDGET_MS=_int(env, "WECHAT_BOT_BUDGET_MS", 800),
            WECHAT_SHARED_ANSWER_SECONDS=_int(env, "WECHAT_SHARED_ANSWER_SECONDS", 10),
            WECHAT_STORE_DEFER_MS=_int(env, "WECHAT_STORE_DEFER_MS", 10),
            WECHAT_CS_MESSAGE_GRANT=env.get("WECHAT_CS_MESSAGE_GRANT") or cls.WECHAT_CS_MESSAGE_GRANT,
            WECHAT_CS_EVENT_GRANT=env.get("WECHAT_CS_EVENT_GRANT") or cls.WECHAT_CS_EVENT_GRANT,
            WECHAT_MINIPROGRAM_PATH_PREFIX=env.get("WECHAT_MINIPROGRAM_PATH_PREFIX") or "pages",
            WECHAT_MINIPROGRAM_STATE=env.get("WECHAT_MINIPROGRAM_STATE") or cls.WECHAT_MINIPROGRAM_STATE,
            UPLOAD_DIR=Path(env.get("UPLOAD_DIR") or instance_dir / "uploads").resolve(),
            UPLOAD_MAX_BYTES=_int(env, "UPLOAD_MAX_BYTES", 10 * 1024 * 1024),
            API_TOKEN_TTL=_int(env, "API_TOKEN_TTL", 7 * 24 * 3600),
            STAFF_TOKEN_TTL=_int(env, "STAFF_TOKEN_TTL", 12 * 3600),
            QUIET_HOURS=env.get("QUIET_HOURS") or "21:30-08:00",
            MESSAGE_TEMPLATE_IDS=env.get("MESSAGE_TEMPLATE_IDS") or "",
            **{name: _int(env, name, getattr(cls, name)) for name in (
                "WECHAT_SEND_RATE", "WECOM_BOT_PER_MINUTE", "DELIVERY_CONCURRENCY", "DELIVERY_MAX_ATTEMPTS",
                "DELIVERY_RETRY_SECONDS", "DELIVERY_LEASE_SECONDS")},
            LOG_LEVEL=(env.get("LOG_LEVEL") or "INFO").upper(),
            SIMULATOR_CALLBACK_URL=env.get("SIMULATOR_CALLBACK_URL") or cls.SIMULATOR_CALLBACK_URL,
            TESTING=mode == "test",
        )
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise ConfigError(f"unknown setting {key}")
            setattr(cfg, key, value)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if len(self.WECHAT_OA_AES_KEY) != 43:
            raise ConfigError("WECHAT_OA_AES_KEY must be the 43-character EncodingAESKey")
        if not self.ID_ENCRYPTION_KEY:
            raise ConfigError("ID_ENCRYPTION_KEY is empty")
        if self.DATABASE_URL.startswith("postgres://"):
            # Heroku-style URLs: SQLAlchemy 2 wants the full dialect name.
            self.DATABASE_URL = "postgresql://" + self.DATABASE_URL[len("postgres://"):]
        if self.DATABASE_URL.startswith("postgresql://"):
            self.DATABASE_URL = "postgresql+psycopg://" + self.DATABASE_URL[len("postgresql://"):]
        start, _, end = self.QUIET_HOURS.partition("-")
        for part in (start, end):
            hh, _, mm = part.partition(":")
            if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
                raise ConfigError(f"QUIET_HOURS must look like 21:30-08:00, got {self.QUIET_HOURS!r}")

        if not 0 <= self.WECHAT_STORE_DEFER_MS <= 1000:  # a retry waits 3 s for the answer
            raise ConfigError(f"WECHAT_STORE_DEFER_MS must be 0..1000, got {self.WECHAT_STORE_DEFER_MS}")
        if self.WECHAT_MINIPROGRAM_STATE not in ("formal", "trial", "developer"):
            raise ConfigError(f"WECHAT_MINIPROGRAM_STATE must be formal, trial or developer, got {self.WECHAT_MINIPROGRAM_STATE!r}")
        for name in ("WECHAT_CS_MESSAGE_GRANT", "WECHAT_CS_EVENT_GRANT"):
            self.cs_grant(name)

    def cs_grant(self, name: str) -> tuple[int, int]:
        """A customer-service grant setting (``seconds/count``) as (seconds, count)."""
        seconds, _, count = getattr(self, name).partition("/")
        if not (seconds.isdigit() and count.isdigit() and int(seconds) > 0):
            raise ConfigError(f"{name} must look like 172800/20 (seconds/messages), got {getattr(self, name)!r}")
        return int(seconds), int(count)

    def as_flask(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["SECRET_KEY"] = self.SECRET_KEY
        return out
