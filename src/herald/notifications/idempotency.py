"""Idempotency keys at the use case: principal + operation + key -> fingerprint and result.

The result is the ids of the notifications the first request created, not one interface's
encoding of them: a repeat over any interface (REST, GraphQL, gRPC) returns the same
notifications, in its own encoding. The fingerprint is a hash of the operation's decoded
inputs (defaults filled in), so the same request sent over two interfaces is one request.

The key is claimed in its own committed transaction before any work starts, so a concurrent
repeat sees it at once: the same input while the first is still being processed is a
Conflict, a finished one replays its result, and a different input under the same key is a
ValidationFailed. The result is stored in the unit of work that creates the notifications, so
a stored result always names rows that exist. A claim whose request died before finishing is
taken over after a minute. Keys are kept `IDEMPOTENCY_TTL_SECONDS` (24 h by default).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from herald.db.models import IdempotencyRecord
from herald.errors import Conflict, FieldProblem, ValidationFailed

MAX_KEY_LENGTH = 255
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Key:
    """One idempotency key of one principal for one operation."""

    owner: uuid.UUID
    operation: str
    key: str

    def _is(self) -> list[ColumnElement[bool]]:
        return [
            IdempotencyRecord.api_key_id == self.owner,
            IdempotencyRecord.operation == self.operation,
            IdempotencyRecord.key == self.key,
        ]


def fingerprint(operation: str, canonical_input: bytes) -> bytes:
    return hashlib.sha256(operation.encode() + b"\n" + canonical_input).digest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            problems=[FieldProblem("Idempotency-Key", "invalid")],
        )
    return key


async def claim(
    engine: AsyncEngine, key: Key, request_hash: bytes, ttl_seconds: int
) -> list[uuid.UUID] | None:
    """Claim `key` for this request: None to go ahead, or the ids it already created."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            delete(IdempotencyRecord).where(*key._is(), IdempotencyRecord.expires_at < now)
        )
        inserted = await connection.scalar(
            insert(IdempotencyRecord)
            .values(
                api_key_id=key.owner,
                operation=key.operation,
                key=key.key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        if inserted is not None:
            return None
        record = (
            await connection.execute(
                select(
                    IdempotencyRecord.request_hash,
                    IdempotencyRecord.result_ids,
                    IdempotencyRecord.created_at,
                )
                .where(*key._is())
                .with_for_update()
            )
        ).first()
        if record is None:  # expired and removed between the two statements
            raise Conflict("this Idempotency-Key is being processed; retry shortly")
        if record.request_hash != request_hash:
            raise ValidationFailed(
                "this Idempotency-Key was used with a different request body",
                problems=[FieldProblem("Idempotency-Key", "reused with another body")],
            )
        if record.result_ids is not None:
            return list(record.result_ids)
        if now - record.created_at < ABANDONED_AFTER:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        # The first request died: this one takes over.
        await connection.execute(update(IdempotencyRecord).where(*key._is()).values(created_at=now))
        return None


async def record_result(connection: AsyncConnection, key: Key, ids: list[uuid.UUID]) -> None:
    """Store the result in the caller's unit of work (the one creating the rows)."""
    await connection.execute(update(IdempotencyRecord).where(*key._is()).values(result_ids=ids))


_RECORDS = cast(Table, IdempotencyRecord.__table__)
_RECORD_RESULT = (
    update(_RECORDS)
    .where(
        _RECORDS.c.api_key_id == bindparam("b_owner"),
        _RECORDS.c.operation == bindparam("b_operation"),
        _RECORDS.c.key == bindparam("b_key"),
    )
    .values(result_ids=bindparam("b_ids"))
)


async def record_results(
    connection: AsyncConnection, results: list[tuple[Key, list[uuid.UUID]]]
) -> None:
    """`record_result` for several keys at once (a group commit's), in one executemany."""
    if results:
        await connection.execute(
            _RECORD_RESULT,
            [
                {"b_owner": k.owner, "b_operation": k.operation, "b_key": k.key, "b_ids": ids}
                for k, ids in results
            ],
        )


async def release(engine: AsyncEngine, key: Key) -> None:
    """Drop an unfinished claim after the request failed, so a retry can go ahead."""
    async with engine.begin() as connection:
        await connection.execute(
            delete(IdempotencyRecord).where(*key._is(), IdempotencyRecord.result_ids.is_(None))
        )
