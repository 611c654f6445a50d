"""REDIS_URL forms: what each becomes (servers, database, credentials, TLS), and masking."""

from __future__ import annotations

import pytest

from herald.config import load_settings
from herald.redis_connection import redis_pool, redis_url_secrets, safe_redis_url


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    pool = redis_pool(
        "redis+sentinel://app:pw@s1:26380,s2/mymaster/4?sentinel_password=spw&socket_timeout=3",
        client_name="herald:test",
    )
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]  # type: ignore[attr-defined]
    assert [(s["host"], s["port"]) for s in sentinels] == [("s1", 26380), ("s2", 26379)]
    assert {s["password"] for s in sentinels} == {"spw"}  # the Sentinels' own password
    assert {s["socket_timeout"] for s in sentinels} == {3.0}
    assert pool.service_name == "mymaster"  # type: ignore[attr-defined]
    data = pool.connection_kwargs
    assert (data["db"], data["username"], data["password"]) == (4, "app", "pw")
    assert data["client_name"] == "herald:test"
    assert "sentinel_password" not in data


def test_tls_sentinels_share_the_ca_and_check_host_names() -> None:
    pool = redis_pool("rediss+sentinel://s1/m?ssl_ca_certs=/etc/ca.pem")
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert sentinel["ssl_ca_certs"] == "/etc/ca.pem"
    assert sentinel["ssl_check_hostname"] is True
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert pool.connection_kwargs["ssl_check_hostname"] is True
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", True), ("&ssl_check_hostname=false", False), ("&ssl_cert_reqs=none", None)],
)
def test_rediss_checks_the_host_name_unless_told_not_to(query: str, expected: bool) -> None:
    pool = redis_pool(f"rediss://h:6380/0?ssl_ca_certs=/ca.pem{query}")
    assert pool.connection_kwargs.get("ssl_check_hostname") == expected


def test_url_options_win_over_herald_defaults() -> None:
    pool = redis_pool("redis://h/2?socket_timeout=9", socket_timeout=5, client_name="x")
    assert pool.connection_kwargs["socket_timeout"] == 9.0
    assert pool.connection_kwargs["db"] == 2


def test_passwords_are_masked_and_redacted_from_the_logs() -> None:
    url = "redis+sentinel://:p%40ss@s1,s2/m/0?sentinel_password=sp"
    assert safe_redis_url(url) == "redis+sentinel://:***@s1,s2/m/0?sentinel_password=***"
    assert redis_url_secrets(url) == ["p@ss", "sp"]
    settings = load_settings(_env_file=None, redis_url=url)
    assert {"p@ss", "sp"} <= set(settings.secret_values())
