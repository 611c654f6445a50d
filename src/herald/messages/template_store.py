"""Storing template versions: save (a new version), list the current ones, delete.

Reads of one version are `templates.load_version`. A save takes a transaction-scoped
advisory lock on (API key, template key), so two saves at once get versions N and N + 1
instead of one failing. A delete marks every version; numbering continues after it.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.models import Template as TemplateRow
from herald.errors import InvalidInput
from herald.messages.templates import TemplateVersion, from_row

_RETURNED = (
    TemplateRow.key,
    TemplateRow.version,
    TemplateRow.category,
    TemplateRow.critical,
    TemplateRow.default_locale,
    TemplateRow.locales,
    TemplateRow.created_at,
)


async def save_version(
    connection: AsyncConnection,
    api_key_id: uuid.UUID,
    key: str,
    *,
    category: str | None,
    critical: bool,
    default_locale: str,
    locales: dict[str, Any],
) -> TemplateVersion:
    """Store the next version of the template (inside the caller's transaction)."""
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 17))"),
        {"lock": f"template:{api_key_id}:{key}"},
    )
    latest = await connection.scalar(
        select(func.max(TemplateRow.version)).where(
            TemplateRow.api_key_id == api_key_id, TemplateRow.key == key
        )
    )
    row = (
        await connection.execute(
            insert(TemplateRow)
            .values(
                api_key_id=api_key_id,
                key=key,
                version=(latest or 0) + 1,
                category=category,
                critical=critical,
                default_locale=default_locale,
                locales=locales,
            )
            .returning(*_RETURNED)
        )
    ).one()
    return from_row(row)


async def delete(connection: AsyncConnection, api_key_id: uuid.UUID, key: str) -> bool:
    """Mark every version deleted; False when there was no template to delete."""
    result = await connection.execute(
        update(TemplateRow)
        .where(
            TemplateRow.api_key_id == api_key_id,
            TemplateRow.key == key,
            TemplateRow.deleted_at.is_(None),
        )
        .values(deleted_at=func.now())
    )
    return bool(result.rowcount)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        key = "\x00"
    # Only what encode_cursor gives (the decoder skips stray characters); no NUL, which no
    # key holds and Postgres text cannot.
    if "\x00" in key or encode_cursor(key) != cursor:
        raise InvalidInput("cursor is not one this API returned")
    return key


async def list_current(
    connection: AsyncConnection, api_key_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[TemplateVersion], str | None]:
    """The current version of each template, by key; and the cursor of the next page."""
    query = (
        select(*_RETURNED)
        .ext(distinct_on(TemplateRow.key))
        .where(TemplateRow.api_key_id == api_key_id, TemplateRow.deleted_at.is_(None))
    )
    if cursor:
        query = query.where(TemplateRow.key > decode_cursor(cursor))
    query = query.order_by(TemplateRow.key, TemplateRow.version.desc()).limit(limit + 1)
    rows = list((await connection.execute(query)).all())
    found = [from_row(row) for row in rows[:limit]]
    return found, encode_cursor(found[-1].key) if len(rows) > limit else None
