"""`herald graphql schema`: print the GraphQL schema (SDL), as committed in schema.graphql."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def graphql() -> None:
    """The GraphQL API (served at /graphql)."""


@graphql.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
def schema_command(output: Path | None) -> None:
    """Print the schema in SDL (or write it to --output)."""
    from herald.api.graphql.schema import sdl

    text = sdl()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
