"""API keys are random (256 bits), shown once, and stored only as a SHA-256 hash.

A fast hash is right here: the keys are long random strings, not passwords, so there is
nothing to guess; a slow hash would only slow down every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.db.models import ApiKey
from herald.errors import Conflict, Forbidden, NotFound, Unauthenticated

KEY_PREFIX = "hk_"
# A revoked key keeps working in a process for at most this long (the lookup cache).
CACHE_SECONDS = 10.0


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls a use case: an API key (which sees and acts on its own notifications only),
    or an operator signed in to the dashboard (`operator=True`, every notification)."""

    id: uuid.UUID
    name: str
    operator: bool = False

    @classmethod
    def for_operator(cls, user: str) -> Principal:
        return cls(uuid.UUID(int=0), user, operator=True)

    @property
    def owner(self) -> uuid.UUID | None:
        """The API key whose notifications this principal may touch; None for all of them."""
        return None if self.operator else self.id

    def api_key(self, refusal: str) -> uuid.UUID:
        """The API key of a use case that belongs to one (submitting, recipients,
        templates); an operator has none of its own, and gets Forbidden(`refusal`)."""
        if self.operator:
            raise Forbidden(refusal)
        return self.id


async def create_key(session: AsyncSession, name: str) -> str:
    """Store a new key named `name` and return it; it cannot be read back later."""
    key = generate_key()
    session.add(ApiKey(name=name, key_hash=hash_key(key), prefix=key[:10]))
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"an API key named {name!r} already exists") from None
    return key


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke_key(session: AsyncSession, name: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKey.id)
    )
    if result.first() is None:
        raise NotFound(f"no active API key named {name!r}")


class KeyAuthenticator:
    """Resolves `Authorization: Bearer <key>` to a `Principal`, caching lookups briefly."""

    def __init__(self, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self._session_maker = session_maker
        self._cache: dict[bytes, tuple[Principal | None, float]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("Send your API key as `Authorization: Bearer <key>`.")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("The Authorization header must be `Bearer <key>`.")
        digest = hash_key(key.strip())
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            async with self._session_maker() as session:
                row = (
                    await session.execute(
                        select(ApiKey.id, ApiKey.name).where(
                            ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                        )
                    )
                ).first()
            principal = Principal(row.id, row.name) if row is not None else None
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, now + CACHE_SECONDS)
        if principal is None:
            raise Unauthenticated("This API key is unknown or has been revoked.")
        return principal
