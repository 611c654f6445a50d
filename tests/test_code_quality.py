"""The linters are part of the suite, so CI holds the bar the README sets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_linters_pass(command: list[str]) -> None:
    executable = BIN / command[0]
    if not executable.exists():
        found = shutil.which(command[0])
        assert found, f"{command[0]} is not installed (it is in the dev extra)"
        executable = Path(found)
    result = subprocess.run(
        [str(executable), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _modules() -> list[str]:
    src = ROOT / "src"
    return sorted(
        ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for path in (src / "herald").rglob("*.py")
        if "migrations" not in path.parts and path.name != "__main__.py"
    )


# Imported once before forking, so each child pays only for Herald's own modules.
_THIRD_PARTY = (
    "litestar sqlalchemy.ext.asyncio redis.asyncio arq msgspec structlog pydantic_settings"
    " strawberry grpc grpc_health.v1.health grpc_reflection.v1alpha.reflection"
    " google.protobuf.message alembic jinja2.sandbox httpx asyncpg prometheus_client uvicorn"
)
_IMPORT_EACH = f"""
import importlib, os, sys
for name in {_THIRD_PARTY.split()!r}:
    importlib.import_module(name)
bad, running = [], {{}}

def reap():
    pid, status = os.wait()
    if status != 0:
        bad.append(running[pid])
    del running[pid]

for module in sys.argv[1:]:
    while len(running) >= (os.cpu_count() or 1):  # one child a core at a time
        reap()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
print(" ".join(sorted(bad)))
"""


def test_every_module_imports_on_its_own() -> None:
    # Each in a fresh process that has imported no Herald module: an import cycle only shows
    # when one of its modules is imported first (`python -c "import herald.auth.cli"`).
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *_modules()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], result.stdout + result.stderr
