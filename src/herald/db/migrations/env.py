"""Alembic environment: Herald runs migrations on a connection it hands over (see migrate.py)."""

from __future__ import annotations

from alembic import context

from herald.db import models  # noqa: F401 - registers every table on the metadata
from herald.db.base import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
