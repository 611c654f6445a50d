"""docker-compose.yml, parsed and checked against the code (no Docker engine runs here).

The services, health checks, profiles, depends_on conditions, Redis flags, stop timeouts and
every environment variable name are checked against Herald's settings and commands. Where a
`docker compose` (v2) or `docker-compose` (v1) binary is installed, `config` validates the file
against the Compose schema too (it needs no engine).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.support import (
    HTTP_SHUTDOWN_SECONDS,
    ROOT,
    STOP_MARGIN_SECONDS,
    cli_commands,
    duration_seconds,
    request_path,
    route_paths,
    settings_from_env,
    split_command,
    unknown_settings,
)
from tests.support.process import HeraldProcess, free_port

COMPOSE = ROOT / "docker-compose.yml"

# service -> (ENABLE_API, ENABLE_WORKERS, profiles)
HERALD_SERVICES = {
    "herald": (True, True, []),
    "herald-api": (True, False, ["split"]),
    "herald-worker": (False, True, ["split"]),
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"]
    return result


def herald_image_services() -> dict[str, Any]:
    """Services built from this repository's Dockerfile (Herald in some role, or migrate)."""
    return {name: s for name, s in services().items() if "build" in s}


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_services_and_profiles() -> None:
    found = services()
    assert {"postgres", "redis", "migrate", *HERALD_SERVICES} <= set(found)
    assert set(herald_image_services()) == {"migrate", *HERALD_SERVICES}
    for name, (_, _, profiles) in HERALD_SERVICES.items():
        assert found[name].get("profiles", []) == profiles, name
    for name in ("postgres", "redis", "migrate"):
        assert not found[name].get("profiles"), f"{name} must run in every profile"


def test_one_image_for_every_role() -> None:
    images = {(s["image"], s["build"]["context"]) for s in herald_image_services().values()}
    assert images == {("herald:local", ".")}
    for service in herald_image_services().values():
        assert service["build"].get("dockerfile", "Dockerfile") == "Dockerfile"


def test_env_var_names_are_herald_settings() -> None:
    for name, service in herald_image_services().items():
        env = env_of(service)
        assert not unknown_settings(set(env)), f"{name}: {unknown_settings(set(env))}"
        settings_from_env(env)  # and the values load


def test_roles_and_migration() -> None:
    for name, (api, workers, _) in HERALD_SERVICES.items():
        settings = settings_from_env(env_of(services()[name]))
        assert (settings.enable_api, settings.enable_workers) == (api, workers), name
        assert settings.auto_migrate is False, f"{name}: the migrate service migrates"
        assert settings.host == "0.0.0.0"
        command = split_command(services()[name].get("command", ["serve"]))
        assert command == ["serve"]
    migrate = services()["migrate"]
    assert split_command(migrate["command"]) == ["migrate"]
    assert "migrate" in cli_commands()
    assert migrate["restart"] == "no", "a one-shot service"


def test_connections_point_at_the_compose_services() -> None:
    postgres = env_of(services()["postgres"])
    for name, service in herald_image_services().items():
        settings = settings_from_env(env_of(service))
        database = urlsplit(settings.database_url)
        assert database.hostname == "postgres", name
        assert database.username == postgres["POSTGRES_USER"]
        assert database.password == postgres["POSTGRES_PASSWORD"]
        assert database.path == f"/{postgres['POSTGRES_DB']}"
        assert urlsplit(settings.redis_url).hostname == "redis", name


def test_dependencies_wait_for_health_and_migration() -> None:
    for name, service in herald_image_services().items():
        depends = service["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends.items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency == "migrate" else None
            expected = expected or "service_healthy"
            assert spec["condition"] == expected, f"{name} -> {dependency}"
            if expected == "service_healthy":
                assert "healthcheck" in services()[dependency], dependency
        assert {"postgres"} <= set(depends)
        if name != "migrate":
            assert {"postgres", "redis", "migrate"} <= set(depends), name


def test_postgres_and_redis_health_checks() -> None:
    for name in ("postgres", "redis"):
        check = services()[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert not check.get("disable")
    assert "pg_isready" in " ".join(services()["postgres"]["healthcheck"]["test"])
    assert "ping" in services()["redis"]["healthcheck"]["test"]


def test_redis_persists_and_never_evicts() -> None:
    command = split_command(services()["redis"]["command"])
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in services()["redis"]["volumes"]), "AOF on a volume"


def test_herald_health_checks_use_the_liveness_route() -> None:
    for name in HERALD_SERVICES:
        check = services()[name]["healthcheck"]
        assert check["test"][0] == "CMD"
        path = request_path(" ".join(check["test"][1:]))
        assert path == "/health/live"
        api, workers, _ = HERALD_SERVICES[name]
        roles = {"ENABLE_API": str(api).lower(), "ENABLE_WORKERS": str(workers).lower()}
        assert path in route_paths(settings_from_env(roles))
    assert services()["migrate"]["healthcheck"] == {"disable": True}


def test_stop_grace_covers_the_drain() -> None:
    for name in HERALD_SERVICES:
        service = services()[name]
        grace = settings_from_env(env_of(service)).shutdown_grace_seconds
        needed = grace + HTTP_SHUTDOWN_SECONDS + STOP_MARGIN_SECONDS
        assert duration_seconds(service["stop_grace_period"]) >= needed, name
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_replicas_can_scale_without_port_clashes() -> None:
    for name in HERALD_SERVICES:
        service = services()[name]
        assert service["deploy"]["replicas"] >= 1, f"{name}: deploy.replicas"
        settings = settings_from_env(env_of(service))
        ports = {str(settings.port)}
        if settings.enable_api and settings.enable_grpc:
            ports.add(str(settings.grpc_port))
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            published = parts[-2] if len(parts) >= 2 else ""
            assert published == "" or "-" in published, f"{name}: fixed host port {mapping}"
            assert parts[-1].split("/")[0] in ports, f"{name}: container port not PORT/GRPC_PORT"
    assert "container_name" not in services()["herald"], "a fixed name prevents --scale"


@pytest.mark.parametrize(
    "binary", [("docker", "compose"), ("docker-compose",)], ids=["compose-v2", "compose-v1"]
)
def test_compose_config_validates(binary: tuple[str, ...]) -> None:
    if shutil.which(binary[0]) is None:
        pytest.skip(f"{binary[0]} is not installed")
    if binary == ("docker", "compose"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode != 0:
            pytest.skip("the docker CLI has no compose plugin")
    result = subprocess.run(
        [*binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr


@pytest.mark.process
def test_herald_health_check_command_runs(herald: Callable[..., HeraldProcess]) -> None:
    test = services()["herald"]["healthcheck"]["test"][1:]
    command = [sys.executable if part == "python" else part for part in test]
    process = herald()
    env = {"PORT": str(process.port), "PATH": ""}
    assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode == 0
    closed = {"PORT": str(free_port()), "PATH": ""}
    assert subprocess.run(command, env=closed, capture_output=True, timeout=30).returncode != 0
