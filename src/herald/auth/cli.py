"""`herald keys create|list|revoke`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from herald.auth.keys import create_key, list_keys, revoke_key
from herald.cli import describe_error, embedded_or_exit, fail, run, settings_or_exit
from herald.config import Settings
from herald.db.engine import create_engine, create_session_maker
from herald.errors import HeraldError

T = TypeVar("T")


@click.group()
def keys() -> None:
    """Manage API keys (stored as hashes; a new key is shown once)."""


Action = Callable[[AsyncSession], Awaitable[T]]


async def _in_session(settings: Settings, action: Action[T]) -> T:
    engine = create_engine(settings, application_name="herald:cli")
    try:
        async with create_session_maker(engine)() as session, session.begin():
            return await action(session)
    finally:
        await engine.dispose()


def _run(action: Action[T]) -> T:
    # Before the event loop: the embedded servers start (or are found) from the main thread.
    settings = embedded_or_exit(settings_or_exit(), "keys", redis=False)
    try:
        return run(lambda: _in_session(settings, action))
    except HeraldError as exc:
        fail(exc.detail)
    except Exception as exc:
        fail(f"cannot reach the database: {describe_error(exc)}")


@keys.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Create a key named NAME and print it (alone, so `KEY=$(herald keys create x)` works)."""
    key = _run(lambda session: create_key(session, name))
    click.echo(key)


@keys.command("list")
def list_() -> None:
    """List keys: name, prefix, created, revoked."""
    rows = _run(list_keys)
    table = Table("name", "prefix", "created", "revoked")
    for row in rows:
        revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else ""
        table.add_row(
            row.name, row.prefix + "…", row.created_at.isoformat(timespec="seconds"), revoked
        )
    Console().print(table)


@keys.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the key named NAME (requests with it get 401 within 10 seconds)."""
    _run(lambda session: revoke_key(session, name))
    click.echo(f"revoked {name}")
