"""Settings: defaults, parsing, and one readable line per bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from herald.config import RateLimit, SettingsError, load_settings


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PORT",
        "ENABLE_API",
        "ENABLE_WORKERS",
        "DATABASE_URL",
        "REDIS_URL",
        "HERALD_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.port == 8000
    assert settings.enable_api
    assert settings.enable_workers
    assert settings.database_url == ""  # embedded Postgres
    assert settings.redis_url == ""  # embedded Valkey
    assert settings.shutdown_grace_seconds == 20
    assert settings.poll_delay_seconds == 0.05
    assert settings.worker_queues == []


def test_lists_mappings_and_rates_parse_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_QUEUES", "email, sms")
    monkeypatch.setenv("QUEUE_CONCURRENCY", "email=20,sms=5")
    monkeypatch.setenv("QUEUE_JOB_TIMEOUT", "email=7.5")
    monkeypatch.setenv("SMS_RATE_LIMIT", "600/min")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(_env_file=None)
    assert settings.worker_queues == ["email", "sms"]
    assert settings.concurrency_for("email") == 20
    assert settings.concurrency_for("push") == settings.worker_concurrency
    assert settings.job_timeout_for("email") == 7.5
    assert settings.sms_rate_limit == RateLimit(600, 60)
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "abc", "invalid setting PORT='abc': expected a whole number"),
        ("ENABLE_API", "maybe", "invalid setting ENABLE_API='maybe': expected true or false"),
        ("LOG_FORMAT", "xml", "invalid setting LOG_FORMAT='xml'"),
        ("LOG_LEVEL", "verbose", "invalid setting LOG_LEVEL='verbose'"),
        ("QUEUE_CONCURRENCY", "email", "invalid setting QUEUE_CONCURRENCY"),
        ("EMAIL_RATE_LIMIT", "5/fortnight", "expected a rate such as 10/s"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must start with postgresql+asyncpg://"),
        ("DATABASE_URL", "postgresql+asyncpg://h:port/db", "DATABASE_URL is not a URL Herald"),
        ("DATABASE_URL", "postgresql+asyncpg://h:5432", "DATABASE_URL must name a database"),
        ("DATABASE_POOL_MODE", "statement", "invalid setting DATABASE_POOL_MODE='statement'"),
        ("REDIS_URL", "http://h/0", "REDIS_URL http://h/0: expected a URL starting with redis://"),
        ("REDIS_URL", "redis://h:x/0", "REDIS_URL redis://h:x/0: Port could not be cast"),
        ("REDIS_URL", "redis://h/0?tls=1", "REDIS_URL redis://h/0?tls=1: unknown option 'tls'"),
        ("REDIS_URL", "redis://h/cache", "expected a database number after the host, got 'cache'"),
        ("REDIS_URL", "rediss://h/0?ssl_ca=/ca", "unknown option 'ssl_ca' in the URL"),
        ("REDIS_URL", "redis+sentinel://h:26379", "expected /service_name or /service_name/db"),
        ("REDIS_URL", "redis+sentinel://h:0/m", "expected host:port for each Sentinel"),
        ("REDIS_URL", "redis+sentinel://h/m/x", "expected a database number after the service"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_both_roles_off_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_API", "false")
    monkeypatch.setenv("ENABLE_WORKERS", "false")
    with pytest.raises(SettingsError, match="ENABLE_API and ENABLE_WORKERS are both false"):
        load_settings(_env_file=None)


def test_starttls_and_implicit_tls_are_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    monkeypatch.setenv("SMTP_IMPLICIT_TLS", "true")
    with pytest.raises(SettingsError, match="SMTP_STARTTLS and SMTP_IMPLICIT_TLS"):
        load_settings(_env_file=None)


def _herald(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "herald", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "abc"}, "herald: invalid setting PORT='abc': expected a whole number\n"),
        (
            {"ENABLE_API": "maybe"},
            "herald: invalid setting ENABLE_API='maybe': expected true or false "
            "(1/0, yes/no and on/off also work)\n",
        ),
        (
            {
                "PUSH_PROVIDER": "fcm",
                "FCM_PROJECT_ID": "p",
                "FCM_CREDENTIALS_FILE": "/nonexistent.json",
            },
            "herald: invalid setting FCM_CREDENTIALS_FILE='/nonexistent.json': not a usable "
            "service-account key ([Errno 2] No such file or directory: '/nonexistent.json')\n",
        ),
        (
            {"REDIS_URL": "redis+sentinel://:hunter2@s1,s2:26380"},
            "herald: invalid settings: REDIS_URL redis+sentinel://:***@s1,s2:26380: expected"
            " /service_name or /service_name/db after the Sentinel hosts\n",
        ),
        (
            {"ENABLE_API": "false", "ENABLE_WORKERS": "false"},
            "herald: invalid settings: ENABLE_API and ENABLE_WORKERS are both false: "
            "a process must have a role\n",
        ),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(env: dict[str, str], expected: str) -> None:
    result = _herald("serve", **env)
    assert result.returncode == 2
    assert result.stderr == expected
    assert "Traceback" not in result.stdout + result.stderr


def test_check_reports_an_unreachable_database_in_one_line() -> None:
    result = _herald("check", DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("postgres:")]
    assert len(lines) == 1
    assert (
        "cannot reach postgresql+asyncpg://postgres@127.0.0.1:1/nowhere (DATABASE_URL)" in lines[0]
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_check_passes_against_the_real_services() -> None:
    from tests.conftest import DATABASE_URL, REDIS_URL

    result = _herald("check", DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "postgres: ok (PostgreSQL" in result.stdout
    assert "redis: ok (Redis" in result.stdout or "redis: ok (Valkey" in result.stdout
