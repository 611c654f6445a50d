"""Fixtures for the messages layer: an API key's id in the test database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import DATABASE_URL
from tests.notifications.conftest import new_key


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(DATABASE_URL)
    yield engine
    await engine.dispose()


async def key_id(engine: AsyncEngine, name: str) -> uuid.UUID:
    """Create an API key named `name`; its id."""
    key = await new_key(name)
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT id FROM api_keys WHERE prefix = :prefix"), {"prefix": key[:10]}
        )
    assert isinstance(found, uuid.UUID)
    return found


# The app with every provider at a stand-in, for the messages' end-to-end tests.
from tests.messages.support import api_key, app_client, client, private_key, providers  # noqa: E402

__all__ = ["api_key", "app_client", "client", "key_id", "private_key", "providers"]
