"""Hot statements in plain SQL, handed to the database driver without SQLAlchemy's statement machinery.

A home page costs a handful of short indexed reads, and a post's fan-out one
insert. Through SQLAlchemy each of them spent more CPU in parameter expansion,
execution contexts and result processing than SQLite took to run it. The few
statements on those paths are written once, with ``:name`` parameters, and
translated for each driver:

- SQLite runs the text through the standard library driver, with a list of ids
  passed as one JSON array and read with ``json_each``;
- PostgreSQL gets ``$n`` parameters, with a list of ids passed as one array: in a
  read block straight through asyncpg, in a transaction through ``exec_driver_sql``
  (so the statement stays in the transaction that SQLAlchemy began).
  Its parameters get their types from where they are used: write ``CAST(:name AS
  BIGINT)`` where the use does not determine it.

Rows come back as tuples, or asyncpg's records on a PostgreSQL read block, with
the columns in the order of the select list. Times come back
as SQLite's stored text or as PostgreSQL's ``datetime``; ``rfc3339`` takes both.
Times written to SQLite are stored in SQLAlchemy's format, so SQLAlchemy reads them back too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from twitter_shared.database import PostgresRead
from twitter_shared.sqlite_inline import InlineConnection

PARAMETER = re.compile(r"(?<!:):([a-z_]+)\b")
# SQLAlchemy stores SQLite times as "2026-12-04 20:50:15.123456", always with microseconds.
SQLITE_STORED_TIME_LENGTH = len("2026-12-04 20:50:15.123456")


class DriverQuery:
    """A statement written with ``:name`` parameters; those named in ``id_lists`` contain lists of ids (``IN :ids``)."""

    def __init__(self, sql: str, *, id_lists: tuple[str, ...] = ()) -> None:
        self.id_lists = frozenset(id_lists)
        self.sqlite = PARAMETER.sub(self._sqlite_parameter, sql)
        self.order: list[str] = []
        self.postgresql = PARAMETER.sub(self._postgresql_parameter, sql)

    def _sqlite_parameter(self, match: re.Match[str]) -> str:
        name = match.group(1)
        return f"(SELECT value FROM json_each(:{name}))" if name in self.id_lists else f":{name}"

    def _postgresql_parameter(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in self.order:
            self.order.append(name)
        number = self.order.index(name) + 1
        return f"(SELECT unnest(${number}::bigint[]))" if name in self.id_lists else f"${number}"


async def fetch_rows(connection: Any, query: DriverQuery, **values: Any) -> Sequence[Sequence[Any]]:
    """Run ``query`` on a connection from ``read_only`` or ``transaction`` and return all its rows."""
    if isinstance(connection, InlineConnection):
        return connection.driver.execute(query.sqlite, _sqlite_values(query, values)).fetchall()
    arguments = tuple(values[name] for name in query.order)
    if isinstance(connection, PostgresRead):
        return await connection.fetch(query.postgresql, arguments)
    result = await connection.exec_driver_sql(query.postgresql, arguments)
    return result.all()


async def execute(connection: Any, query: DriverQuery, **values: Any) -> None:
    """Run a statement that returns no rows on a connection from ``transaction``."""
    if isinstance(connection, InlineConnection):
        connection.driver.execute(query.sqlite, _sqlite_values(query, values))
        return
    await connection.exec_driver_sql(query.postgresql, tuple(values[name] for name in query.order))


def _sqlite_values(query: DriverQuery, values: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in values.items():
        if name in query.id_lists:
            value = orjson.dumps(value).decode()
        elif isinstance(value, datetime):
            value = sqlite_stored_time(value)
        encoded[name] = value
    return encoded


def sqlite_stored_time(moment: datetime) -> str:
    """Format a time as SQLAlchemy stores it in SQLite: naive UTC, always with microseconds."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def rfc3339(value: str | datetime) -> str:
    """Format a stored time as RFC 3339 UTC with milliseconds (``2026-12-04T20:50:15.123Z``)."""
    if isinstance(value, str):
        if len(value) == SQLITE_STORED_TIME_LENGTH:
            return f"{value[:10]}T{value[11:23]}Z"
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"
