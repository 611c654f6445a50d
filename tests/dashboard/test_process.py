"""What `herald serve` logs about the dashboard, read from a real process's output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.dashboard.conftest import BASE, PASSWORD, USER, csrf_of, dashboard_env
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process

Start = Callable[..., HeraldProcess]


def events(process: HeraldProcess, name: str) -> list[dict[str, Any]]:
    found = []
    for line in process.logs().splitlines():
        if f'"{name}"' in line:
            found.append(json.loads(line))
    return found


def test_a_wrong_password_is_logged_with_the_client_but_never_the_password(
    herald: Start,
) -> None:
    wrong = "hunter2-not-the-password"
    process = herald(**dashboard_env())
    with httpx.Client(base_url=process.url, timeout=5) as client:
        page = client.get(f"{BASE}/login")
        form = {"username": USER, "csrf_token": csrf_of(page.text), "next": BASE}
        refused = client.post(f"{BASE}/login", data={**form, "password": wrong})
        assert refused.status_code == 401
        # A password typed into the user field is not logged either.
        client.post(f"{BASE}/login", data={**form, "username": wrong, "password": wrong})
        accepted = client.post(f"{BASE}/login", data={**form, "password": PASSWORD})
        assert accepted.status_code == 303

    failures = events(process, "dashboard.login_failed")
    assert [f["known_user"] for f in failures] == [True, False]
    assert all(f["client"] == "127.0.0.1" for f in failures)
    assert all(f["level"] == "warning" for f in failures)
    assert events(process, "dashboard.login")[0]["user"] == USER
    logs = process.logs()
    assert wrong not in logs
    assert PASSWORD not in logs


def test_without_a_user_the_dashboard_is_off_and_one_line_says_so(herald: Start) -> None:
    process = herald()
    assert process.get(f"{BASE}/").status_code == 404
    disabled = events(process, "dashboard.disabled")
    assert len(disabled) == 1
    assert disabled[0]["level"] == "warning"
    assert "DASHBOARD_USERNAME" in disabled[0]["detail"]


def test_an_empty_secret_key_warns_that_sessions_do_not_outlive_the_process(
    herald: Start,
) -> None:
    process = herald(**dashboard_env(DASHBOARD_SECRET_KEY=""))
    assert process.get(f"{BASE}/login").status_code == 200
    (warning,) = events(process, "dashboard.ephemeral_secret_key")
    assert "DASHBOARD_SECRET_KEY" in warning["detail"]
    assert events(process, "dashboard.mounted")[0]["path"] == BASE


def test_a_malformed_password_hash_stops_start_up_naming_the_setting(herald: Start) -> None:
    process = herald(wait_ready=False, **dashboard_env(DASHBOARD_PASSWORD_HASH="plain-text"))
    assert process.wait(timeout=20) == 2
    assert (
        "herald: invalid setting DASHBOARD_PASSWORD_HASH: expected scrypt$n$r$p$salt$hash"
        in process.logs()
    )
    assert "plain-text" not in process.logs()  # the value of a secret setting is not echoed
