"""What the deployment files are checked against: the code's settings, routes and commands.

Everything here is read from Herald itself (the settings class, the app's routes, the click
commands, pyproject.toml), so a deployment file that drifts from the code fails a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from herald.app import create_app
from herald.cli import cli
from herald.config import Settings

ROOT = Path(__file__).resolve().parents[2]

# Variables the deployment files may set that are not Herald settings (the runtime's own).
NOT_SETTINGS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
NOT_SETTINGS_PREFIXES = ("PIP_",)

# uvicorn's own graceful HTTP shutdown after the drain (cli.py: timeout_graceful_shutdown=5),
# plus a margin for process exit: what a stop timeout must cover beyond SHUTDOWN_GRACE_SECONDS.
HTTP_SHUTDOWN_SECONDS = 5
STOP_MARGIN_SECONDS = 5


def setting_names() -> set[str]:
    """Every environment variable Herald reads: its settings' field names, upper-cased."""
    return {name.upper() for name in Settings.model_fields}


def unknown_settings(names: set[str] | Mapping[str, Any]) -> set[str]:
    """The names that are neither Herald settings nor known runtime variables."""
    return {
        name
        for name in names
        if name not in setting_names()
        and name not in NOT_SETTINGS
        and not name.startswith(NOT_SETTINGS_PREFIXES)
    }


def default(name: str) -> Any:
    """A setting's default, by its environment variable name."""
    return Settings.model_fields[name.lower()].default


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ holding exactly `env` for Herald's settings (nothing inherited)."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.upper() in setting_names():
                del os.environ[name]
        os.environ.update(env)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings as `herald serve` would load them from exactly this environment."""
    with environment(env):
        return Settings(_env_file=None)  # type: ignore[call-arg]


def route_paths(settings: Settings) -> set[str]:
    """The paths the app built for `settings` serves (nothing is connected to build it)."""
    return {route.path for route in create_app(settings).routes}


def cli_commands() -> set[str]:
    return set(cli.commands)


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = pyproject()["project"]["scripts"]
    return scripts


def request_path(text: str) -> str:
    """The one quoted URL path ('/health/live') a health check command requests."""
    found = re.findall(r"['\"](/[A-Za-z0-9_./-]*)['\"]", text)
    assert len(found) == 1, f"expected one quoted path in {text!r}, found {found}"
    return found[0]


def duration_seconds(text: str | int | float) -> float:
    """`30s`, `1m30s`, `45` (seconds) or `500ms` as seconds (compose and systemd style)."""
    if isinstance(text, int | float):
        return float(text)
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    total = 0.0
    pos = 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)\s*(ms|us|min|h|m|s)", text):
        assert match.start() == pos, f"cannot parse duration {text!r}"
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    assert pos == len(text), f"cannot parse duration {text!r}"
    assert pos > 0, f"cannot parse duration {text!r}"
    return total


def split_command(value: str | list[str]) -> list[str]:
    return list(value) if isinstance(value, list) else shlex.split(value)


# -- Dockerfile ------------------------------------------------------------------------------


class Instruction:
    """One Dockerfile instruction: its stage (0-based, by FROM), keyword and raw arguments."""

    def __init__(self, stage: int, keyword: str, args: str) -> None:
        self.stage = stage
        self.keyword = keyword
        self.args = args

    def exec_form(self) -> list[str]:
        """The JSON (exec form) arguments; fails for the shell form."""
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        assert all(isinstance(item, str) for item in value)
        return value

    def __repr__(self) -> str:
        return f"<{self.stage}:{self.keyword} {self.args}>"


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments and directives dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "Dockerfile ends in a continuation line"
    return instructions


def dockerfile() -> list[Instruction]:
    return parse_dockerfile(ROOT / "Dockerfile")


def image_user() -> str:
    """The USER of the final stage: the user Herald's containers run as."""
    final = max(i.stage for i in dockerfile())
    users = [i.args for i in dockerfile() if i.stage == final and i.keyword == "USER"]
    assert users, "the final stage sets no USER: the container would run as root"
    return users[-1]
