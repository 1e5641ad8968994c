"""The event outbox: written in the same transaction as a change, read by consumers with a cursor.

The classic outbox gap: with concurrent writers, positions from a sequence can
commit out of order, and a consumer that has read position 8 skips a 7 that
commits a moment later. Here positions are handed out in commit order instead:
on PostgreSQL a transaction-scoped advisory lock is taken just before the outbox
row is inserted and held until commit, so a later position can only become
visible after every earlier one. SQLite already serialises writers.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_shared.database import read_only
from twitter_shared.driver_query import DriverQuery, execute
from twitter_shared.errors import BadRequest

# Arbitrary but fixed: the advisory lock key that orders outbox positions.
OUTBOX_LOCK_KEY = 7_411_001
MAX_EVENTS_PER_READ = 1000
MAX_WAIT_SECONDS = 30.0
# The largest value a position column (a 64-bit integer) can hold. A larger ``after`` cannot be compared.
MAX_POSITION = 2**63 - 1
# Above any outbox position, so a read after it returns only the outbox head and no events.
BEYOND_ANY_POSITION = 1 << 62
# Longer waits are cut to MAX_WAIT_SECONDS. This bound only keeps the number convertible to a float.
MAX_WAIT_MS_PARAMETER = 2**31 - 1


@dataclass(frozen=True)
class Event:
    position: int
    kind: str
    payload: dict[str, Any]


async def append_event(connection: AsyncConnection, outbox: Table, *, kind: str, payload: dict[str, Any]) -> None:
    """Add an event to the outbox inside the caller's transaction; call it after the change it announces."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK_KEY})
    await execute(connection, _append_query(outbox.name), kind=kind, payload=orjson.dumps(payload).decode(), created_at=datetime.now(UTC))


@functools.cache
def _append_query(table_name: str) -> DriverQuery:
    return DriverQuery(f"INSERT INTO {table_name} (kind, payload, created_at) VALUES (:kind, :payload, :created_at)")


class OutboxReader:
    """Serve ``GET /internal/events``: events after a position, waiting a while if there are none yet."""

    def __init__(self, *, engine: AsyncEngine, outbox: Table, poll_seconds: float) -> None:
        self.engine = engine
        self.outbox = outbox
        self.poll_seconds = poll_seconds
        self._appended = asyncio.Event()

    def notify(self) -> None:
        """Wake waiting readers after this process committed an event; other replicas are found by polling."""
        self._appended.set()
        self._appended = asyncio.Event()

    async def read(self, *, after: int, limit: int) -> tuple[list[Event], int]:
        async with read_only(self.engine) as connection:
            rows = await connection.execute(
                select(self.outbox.c.position, self.outbox.c.kind, self.outbox.c.payload)
                .where(self.outbox.c.position > after)
                .order_by(self.outbox.c.position)
                .limit(limit)
            )
            events = [Event(row.position, row.kind, orjson.loads(row.payload)) for row in rows]
            head = await connection.scalar(select(func.coalesce(func.max(self.outbox.c.position), 0)))
        return events, int(head)

    async def handle(self, request: web.Request) -> web.Response:
        from twitter_shared.web import json_response  # noqa: PLC0415 - web imports nothing from here, keep it so

        after = _int_param(request, "after", default=0, low=0, high=MAX_POSITION)
        limit = _int_param(request, "limit", default=500, low=1, high=MAX_EVENTS_PER_READ)
        wait = min(_int_param(request, "wait_ms", default=0, low=0, high=MAX_WAIT_MS_PARAMETER) / 1000, MAX_WAIT_SECONDS)
        deadline = time.monotonic() + wait

        events, head = await self.read(after=after, limit=limit)
        while not events and time.monotonic() < deadline:
            waiter = self._appended
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(min(self.poll_seconds, max(remaining, 0))):
                    await waiter.wait()
            except TimeoutError:
                pass
            events, head = await self.read(after=after, limit=limit)

        return json_response({
            "events": [{"position": e.position, "kind": e.kind, "payload": e.payload} for e in events],
            "head": head,
        })


def _int_param(request: web.Request, name: str, *, default: int, low: int, high: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise BadRequest(f"{name} must be an integer") from error
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} must be between {low} and {high if high is not None else 'any'}")
    return value
