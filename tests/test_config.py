"""Configuration comes from environment variables only; production demands every secret."""

from pathlib import Path

import pytest

from server.config import ENV_VARS, PRODUCTION_REQUIRED, Config, ConfigError


def test_embedded_default_with_nothing_set(tmp_path):
    cfg = Config.from_env(environ={"UNIONHUB_INSTANCE_DIR": str(tmp_path)})
    assert cfg.ENV == "development"
    assert cfg.DATABASE_URL == f"sqlite:///{tmp_path / 'unionhub.db'}"
    assert cfg.uses_embedded_redis
    assert cfg.WECHAT_API_BASE == "http://127.0.0.1:5100"
    assert len(cfg.WECHAT_OA_AES_KEY) == 43
    # Generated secrets are kept, so demo data encrypted today decrypts tomorrow.
    again = Config.from_env(environ={"UNIONHUB_INSTANCE_DIR": str(tmp_path)})
    assert (again.SECRET_KEY, again.ID_ENCRYPTION_KEY) == (cfg.SECRET_KEY, cfg.ID_ENCRYPTION_KEY)
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_production_refuses_missing_secrets(tmp_path):
    with pytest.raises(ConfigError) as err:
        Config.from_env(environ={"UNIONHUB_ENV": "production", "UNIONHUB_INSTANCE_DIR": str(tmp_path)})
    message = str(err.value)
    for name in PRODUCTION_REQUIRED:
        assert name in message
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_with_everything_set(tmp_path):
    environ = {name: "x" for name in PRODUCTION_REQUIRED}
    environ.update(
        UNIONHUB_ENV="production",
        DATABASE_URL="postgres://u:p@db/unionhub",
        REDIS_URL="redis://cache:6379/0",
        WECHAT_OA_AES_KEY="a" * 43,
        UNIONHUB_INSTANCE_DIR=str(tmp_path),
    )
    cfg = Config.from_env(environ=environ)
    assert cfg.is_production
    assert cfg.DATABASE_URL == "postgresql+psycopg://u:p@db/unionhub"
    assert cfg.REDIS_URL == "redis://cache:6379/0"


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("UNIONHUB_ENV", "staging", "UNIONHUB_ENV"),
        ("WECHAT_OA_AES_KEY", "short", "43-character"),
        ("WECHAT_HTTP_TIMEOUT", "soon", "WECHAT_HTTP_TIMEOUT"),
        ("QUIET_HOURS", "late", "QUIET_HOURS"),
    ],
)
def test_bad_values_are_named(tmp_path, name, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config.from_env(environ={"UNIONHUB_INSTANCE_DIR": str(tmp_path), name: value})


def test_every_documented_variable_is_in_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [name for name, _, _ in ENV_VARS if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"
