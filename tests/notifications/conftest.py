"""Fixtures for the notification API: API keys and polling helpers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from herald.auth.keys import create_key
from herald.db.engine import create_session_maker
from tests.conftest import DATABASE_URL


async def new_key(name: str) -> str:
    engine = create_async_engine(DATABASE_URL)
    try:
        async with create_session_maker(engine)() as session, session.begin():
            return await create_key(session, name)
    finally:
        await engine.dispose()


@pytest.fixture
async def api_key() -> str:
    return await new_key("tests")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_status(
    client: httpx.AsyncClient,
    key: str,
    notification_id: str,
    statuses: tuple[str, ...] = ("sent",),
    timeout: float = 15,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/notifications/{notification_id}", headers=auth(key))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"status stayed {body.get('status')}: {body}")
