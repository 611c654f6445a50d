"""`herald migrate`: creates the database, and replicas migrating together do not race."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
from sqlalchemy.engine import make_url

from herald.db.migrate import alembic_config
from tests.conftest import DATABASE_URL, drop_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def _revision(url: str) -> str:
    target = make_url(url)
    conn = await asyncpg.connect(
        host=target.host,
        port=target.port or 5432,
        user=target.username,
        password=target.password,
        database=target.database,
    )
    try:
        return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await conn.close()


def test_replicas_migrating_at_once_create_the_database_and_reach_head() -> None:
    from alembic.script import ScriptDirectory

    name = make_url(DATABASE_URL).database + "_migrate"
    url = make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(drop_database(name))
    env = {**os.environ, "DATABASE_URL": url, "LOG_FORMAT": "json"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "herald", "migrate"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    try:
        assert [code for code, _, _ in results] == [0, 0, 0], results
        outputs = sorted(out.strip().splitlines()[-1] for _, out, _ in results)
        # exactly one applied the migrations; the others waited for the lock and found none
        assert outputs[0].startswith("applied 0001")
        assert outputs[1:] == ["database is up to date"] * 2
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert asyncio.run(_revision(url)) == head
    finally:
        asyncio.run(drop_database(name))
