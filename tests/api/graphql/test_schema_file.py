"""The committed schema.graphql is the schema Herald serves (regenerate it when it is not)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from herald.api.graphql.schema import sdl
from herald.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def test_schema_graphql_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), "run `herald graphql schema -o schema.graphql` and commit it"


def test_the_command_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["graphql", "schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == sdl()
    assert "notificationEvents(id: ID = null, filter: NotificationFilter = null)" in result.stdout
