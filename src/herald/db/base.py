"""The declarative base every model shares."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` for a vocabulary of constants (never for input)."""
    quoted = ", ".join("'" + value + "'" for value in values)
    return f"{column} IN ({quoted})"


def sql_in_found(column: str, values: tuple[str, ...]) -> str:
    """`column IN (...)` as a check of rows already found by their primary key, in a form
    (`column || ''`) from which the planner cannot prove a partial index's predicate.

    The batched claims and outcomes look their rows up by id; written plainly, their status
    test matches the predicate of a partial index over that status (`ix_notifications_due`,
    `ix_notifications_lease`), and with statistics that lag a burst (a fresh backlog, before
    autovacuum's next ANALYZE) the planner prefers scanning that whole index, dead entries
    and all, to ten primary-key lookups: 15-30 ms a claim instead of one (bench
    `http_under_load`), the whole backlog read again for every batch.
    """
    return sql_in(f"({column} || '')", values)
