"""The committed schema.graphql is the schema Herald serves (regenerate it when it is not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from herald.api.graphql.schema import sdl

ROOT = Path(__file__).resolve().parents[3]


def test_schema_graphql_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), "run `herald graphql schema -o schema.graphql` and commit it"


def test_the_command_prints_the_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "herald", "graphql", "schema"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == sdl()
    assert "notificationEvents(id: ID = null, filter: NotificationFilter = null)" in result.stdout
