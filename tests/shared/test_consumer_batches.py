"""The outbox consumer gathers a stream of events into few batches, and still applies every event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_shared.consumer import OutboxConsumer
from twitter_shared.database import create_engine, dispose
from twitter_shared.outbox import Event
from twitter_shared.tables import add_shared_tables

metadata = MetaData()
shared = add_shared_tables(metadata)
# Long enough that the test adds its burst of events well inside one pause.
PAUSE_SECONDS = 0.5


class StubSource:
    """Stand-in for a service's ``/internal/events``: returns the events after a position, or waits for one."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def add(self, count: int) -> None:
        for _ in range(count):
            position = len(self.events) + 1
            self.events.append({"position": position, "kind": "test.event", "payload": {"n": position}})
        self.arrived.set()

    async def request(self, method: str, path: str, *, params: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
        assert (method, path) == ("GET", "/internal/events")
        after, limit = params["after"], params["limit"]
        if len(self.events) <= after and params["wait_ms"]:
            self.arrived.clear()
            try:
                async with asyncio.timeout(params["wait_ms"] / 1000):
                    await self.arrived.wait()
            except TimeoutError:
                pass
        return {"events": self.events[after : after + limit], "head": len(self.events)}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await dispose(engine)


async def consume(engine: AsyncEngine, source: StubSource, *, gather_seconds: float, produce) -> list[list[int]]:  # noqa: ANN001
    """Run a consumer while ``produce`` adds events; return the positions of each batch it applied."""
    batches: list[list[int]] = []

    async def apply(connection: AsyncConnection, events: list[Event]) -> None:
        batches.append([event.position for event in events])

    consumer = OutboxConsumer(
        source="stub",
        client=source,  # type: ignore[arg-type] - only ``request`` is used
        engine=engine,
        cursors=shared["consumer_cursors"],
        leases=shared["consumer_leases"],
        apply=apply,
        gather_seconds=gather_seconds,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await produce(batches)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return batches


async def until(condition) -> None:  # noqa: ANN001
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


async def test_pause_gathers_events_into_batch(engine: AsyncEngine) -> None:
    source = StubSource()

    async def produce(batches: list[list[int]]) -> None:
        source.add(1)
        await until(lambda: len(batches) == 1)
        for _ in range(10):
            source.add(1)
            await asyncio.sleep(0)
        await until(lambda: sum(map(len, batches)) == 11)

    batches = await consume(engine, source, gather_seconds=PAUSE_SECONDS, produce=produce)

    assert batches == [[1], list(range(2, 12))]


async def test_no_pause_one_batch_per_event(engine: AsyncEngine) -> None:
    source = StubSource()

    async def produce(batches: list[list[int]]) -> None:
        source.add(1)
        await until(lambda: len(batches) == 1)
        for _ in range(10):
            source.add(1)
            await until(lambda: sum(map(len, batches)) == len(source.events))

    batches = await consume(engine, source, gather_seconds=0, produce=produce)

    assert batches == [[position] for position in range(1, 12)]


async def test_backlog_read_without_pause(engine: AsyncEngine) -> None:
    """Only a batch that empties the source is followed by the pause; a backlog is read in full batches."""
    source = StubSource()
    source.add(1_200)

    async def produce(batches: list[list[int]]) -> None:
        await until(lambda: sum(map(len, batches)) == 1_200)

    batches = await consume(engine, source, gather_seconds=60, produce=produce)

    assert [len(batch) for batch in batches] == [500, 500, 200]
