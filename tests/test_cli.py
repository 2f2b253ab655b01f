"""Operators get one clear line, not a traceback, for the mistakes they make."""

import os
import socket
import subprocess
import sys

import pytest

from .conftest import TEST_OVERRIDES, TEST_SECRETS

pytestmark = pytest.mark.slow


@pytest.fixture
def cli_env(tmp_path, redis_url):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TEST_SECRETS, **TEST_OVERRIDES)
    env.update(UNIONHUB_INSTANCE_DIR=str(tmp_path), REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    return env


def unionhub(env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("unionhub: error:")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}, "cannot reach the database"),
        ({"DATABASE_URL": "bogus://what"}, "DATABASE_URL is not a usable database URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "cannot reach Redis"),
        ({"REDIS_URL": "notaurl"}, "REDIS_URL is not a usable Redis URL"),
        ({"UNIONHUB_ENV": "production", "SECRET_KEY": ""}, "production mode needs"),
        ({"ID_ENCRYPTION_KEY": "not-a-fernet-key"}, "ID_ENCRYPTION_KEY"),
    ],
)
def test_broken_settings(cli_env, overrides, fragment):
    cli_env.update(overrides)
    assert_one_line_error(unionhub(cli_env, "check"), fragment)


def test_schema_must_be_migrated_before_serving(cli_env):
    assert_one_line_error(unionhub(cli_env, "check"), "run `unionhub db upgrade`")
    upgraded = unionhub(cli_env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stdout
    ready = unionhub(cli_env, "check")
    assert ready.returncode == 0 and "ready" in ready.stdout


def test_occupied_port(cli_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert_one_line_error(unionhub(cli_env, "web", "--port", str(port)), f"port 127.0.0.1:{port} is not available")
        assert_one_line_error(unionhub(cli_env, "dev", "--port", str(port)), "is not available")


def test_create_admin(cli_env):
    assert unionhub(cli_env, "db", "upgrade").returncode == 0
    seeded = unionhub(cli_env, "seed-demo", "--workers", "20")
    assert seeded.returncode == 0, seeded.stderr
    created = unionhub(cli_env, "create-admin", "li.ming", "--password", "s3cret-pass", "--org", "江城市总工会")
    assert created.returncode == 0, created.stderr
    assert "created admin li.ming" in created.stdout
    assert_one_line_error(
        unionhub(cli_env, "create-admin", "li.ming", "--password", "s3cret-pass", "--org", "江城市总工会"), "li.ming"
    )
    assert_one_line_error(unionhub(cli_env, "create-admin", "wang", "--password", "s3cret-pass", "--org", "不存在的工会"), "no organisation")
    assert_one_line_error(unionhub(cli_env, "create-admin", "wang", "--password", "short", "--org", "1"), "at least 8")


def test_config_lists_every_variable(cli_env):
    from server.config import ENV_VARS

    out = unionhub(cli_env, "config", "--markdown").stdout
    for name, _, _ in ENV_VARS:
        assert f"`{name}`" in out
