"""deploy/systemd: the unit verifies with systemd-analyze and sets only real Herald settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import (
    HTTP_SHUTDOWN_SECONDS,
    ROOT,
    STOP_MARGIN_SECONDS,
    cli_commands,
    duration_seconds,
    settings_from_env,
    unknown_settings,
)

SYSTEMD = ROOT / "deploy" / "systemd"
UNIT = SYSTEMD / "herald.service"
ENV_EXAMPLE = SYSTEMD / "herald.env.example"
INSTALLED_HERALD = "/opt/herald/bin/herald"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def unit_entries(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service() -> dict[str, list[str]]:
    return unit_entries()["Service"]


def one(key: str) -> str:
    values = service()[key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def unit_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for value in service().get("Environment", []):
        for assignment in value.split():
            name, _, setting = assignment.partition("=")
            env[name] = setting.strip('"')
    return env


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            env[name.strip()] = value.strip()
    return env


def effective_env() -> dict[str, str]:
    """Environment= defaults, overridden by the EnvironmentFile (as systemd does)."""
    return {**unit_environment(), **env_file()}


def test_environment_names_are_herald_settings() -> None:
    assert not unknown_settings(set(unit_environment())), unknown_settings(set(unit_environment()))
    assert not unknown_settings(set(env_file())), unknown_settings(set(env_file()))
    settings = settings_from_env(effective_env())
    assert settings.enable_api
    assert settings.enable_workers


def test_role_flags_are_in_the_environment() -> None:
    for name in ("ENABLE_API", "ENABLE_WORKERS"):
        assert name in unit_environment()
        assert name in env_file()
    assert "WORKER_QUEUES" in env_file()


def test_env_file_is_loaded_and_required() -> None:
    assert service()["EnvironmentFile"] == ["/etc/herald/herald.env"], "no '-': secrets required"


def test_runs_herald_serve_as_a_non_root_user() -> None:
    command = one("ExecStart").split()
    assert command[0] == INSTALLED_HERALD
    assert command[1:] == ["serve"]
    assert command[1] in cli_commands()
    assert one("User") not in {"root", "0"}
    assert one("Group") not in {"root", "0"}


def test_stop_and_restart_policy() -> None:
    assert one("Restart") == "on-failure"
    assert one("KillSignal") == "SIGTERM"
    grace = settings_from_env(effective_env()).shutdown_grace_seconds
    needed = grace + HTTP_SHUTDOWN_SECONDS + STOP_MARGIN_SECONDS
    assert duration_seconds(one("TimeoutStopSec")) >= needed


def test_hardening_options() -> None:
    for key, value in HARDENING.items():
        assert one(key) == value, key
    assert "AF_INET" in one("RestrictAddressFamilies").split()


def _copy_with_a_real_binary(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's herald: verify checks the binary exists."""
    herald = Path(sys.executable).parent / "herald"
    assert herald.exists(), "the herald console script is not installed in this venv"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALLED_HERALD, str(herald)))
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = _copy_with_a_real_binary(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values; it only warns. Any line about the unit fails.
    problems = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0, result.stderr
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    unit = _copy_with_a_real_binary(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot assess a unit offline: {result.stderr.strip()}")
    assert float(match.group(1)) <= 2.0, result.stdout
