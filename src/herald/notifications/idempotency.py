"""`Idempotency-Key` for the POST endpoints, scoped to the API key and kept 24 hours.

The key is claimed in its own committed transaction before any work starts, so a concurrent
repeat sees it at once: the same body while the first is still being processed is 409, a
finished one replays the stored response (same ids, nothing created), and a different body
under the same key is 422. The response is stored in the same transaction that creates the
notifications, so a stored response always matches rows that exist. A claim whose request
died before finishing is taken over after a minute.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.auth.keys import Principal
from herald.db.models import IdempotencyRecord
from herald.errors import Conflict, ValidationFailed

MAX_KEY_LENGTH = 255
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes


def request_fingerprint(method: str, path: str, canonical_body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical_body).digest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            errors=[{"field": "Idempotency-Key", "message": "invalid"}],
        )
    return key


async def claim(
    session_maker: async_sessionmaker[AsyncSession],
    principal: Principal,
    key: str,
    fingerprint: bytes,
    ttl_seconds: int,
) -> StoredResponse | None:
    """Claim `key` for this request; return the stored response if it was already served."""
    now = datetime.now(UTC)
    async with session_maker() as session, session.begin():
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == principal.id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.expires_at < now,
            )
        )
        inserted = await session.scalar(
            insert(IdempotencyRecord)
            .values(
                api_key_id=principal.id,
                key=key,
                request_hash=fingerprint,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        if inserted is not None:
            return None
        record = await session.scalar(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.api_key_id == principal.id, IdempotencyRecord.key == key)
            .with_for_update()
        )
        if record is None:  # expired and removed between the two statements
            raise Conflict("this Idempotency-Key is being processed; retry shortly")
        if record.request_hash != fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was used with a different request body",
                errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
            )
        if record.response_status is not None and record.response_body is not None:
            return StoredResponse(record.response_status, record.response_body)
        if now - record.created_at < ABANDONED_AFTER:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        record.created_at = now  # the first request died: this one takes over
        return None


async def store_response(
    session: AsyncSession, principal: Principal, key: str, response: StoredResponse
) -> None:
    """Record the response in the caller's transaction (the one creating the rows)."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.api_key_id == principal.id, IdempotencyRecord.key == key)
        .values(response_status=response.status, response_body=response.body)
    )


async def release(
    session_maker: async_sessionmaker[AsyncSession], principal: Principal, key: str
) -> None:
    """Drop an unfinished claim after the request failed, so a retry can go ahead."""
    async with session_maker() as session, session.begin():
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == principal.id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.response_status.is_(None),
            )
        )
