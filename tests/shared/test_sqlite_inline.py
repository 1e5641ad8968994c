"""SQLite statements on the event loop: writers take turns, another process's lock never blocks the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared import database, sqlite_inline
from twitter_shared.database import create_engine, dispose, read_only, transaction
from twitter_shared.errors import Unavailable


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with transaction(engine) as connection:
        await connection.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    yield engine
    await dispose(engine)


async def names(engine: AsyncEngine) -> list[str]:
    async with read_only(engine) as connection:
        return list(await connection.scalars(text("SELECT name FROM items ORDER BY name")))


async def add(engine: AsyncEngine, name: str) -> None:
    async with transaction(engine) as connection:
        await connection.execute(text("INSERT INTO items (name) VALUES (:name)"), {"name": name})


async def test_failed_write_block_rolls_back(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError):
        async with transaction(engine) as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('lost')"))
            raise RuntimeError("the caller failed")
    await add(engine, "kept")

    assert await names(engine) == ["kept"]


async def test_read_connection_refuses_writes(engine: AsyncEngine) -> None:
    with pytest.raises(Unavailable) as refused:
        async with read_only(engine) as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('sneaked')"))

    assert isinstance(refused.value.__cause__, OperationalError)
    assert "readonly" in str(refused.value.__cause__)
    assert await names(engine) == []


async def test_writers_take_turns_across_awaits(engine: AsyncEngine) -> None:
    order: list[str] = []

    async def slow_writer(name: str) -> None:
        async with transaction(engine) as connection:
            order.append(f"{name} starts")
            await asyncio.sleep(0.01)  # an await inside the block, as the follow merge's HTTP call
            await connection.execute(text("INSERT INTO items (name) VALUES (:name)"), {"name": name})
            order.append(f"{name} ends")

    await asyncio.gather(*(slow_writer(name) for name in ("a", "b", "c")))

    assert order == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]
    assert await names(engine) == ["a", "b", "c"]


async def test_other_process_lock_keeps_loop_running(engine: AsyncEngine, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    running = asyncio.create_task(ticker())
    writer = asyncio.create_task(add(engine, "after the lock"))
    await asyncio.sleep(0.2)
    assert not writer.done()
    other.execute("COMMIT")
    await writer
    running.cancel()
    other.close()

    assert ticks >= 20, "the event loop stalled while the writer waited"
    assert await names(engine) == ["after the lock"]


async def test_lock_held_too_long_gives_unavailable(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "WRITE_WAIT_SECONDS", 0.2)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            await add(engine, "never")
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert time.monotonic() - started < 2
    await add(engine, "later")
    assert await names(engine) == ["later"]


async def test_cancelled_writer_frees_its_turn(engine: AsyncEngine) -> None:
    release = asyncio.Event()

    async def holder() -> None:
        async with transaction(engine) as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('holder')"))
            await release.wait()

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(add(engine, "cancelled"))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await holding
    await add(engine, "next")

    assert await names(engine) == ["holder", "next"]


async def test_back_to_back_writes_let_other_tasks_run(engine: AsyncEngine) -> None:
    order: list[str] = []

    async def other_task() -> None:
        while True:
            order.append("other")
            await asyncio.sleep(0)

    running = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    order.clear()
    for name in ("a", "b", "c"):
        await add(engine, name)
        order.append(name)
    running.cancel()

    writes_at = [order.index(name) for name in ("a", "b", "c")]
    assert all(later - earlier > 1 for earlier, later in zip(writes_at, writes_at[1:])), order


def kept_readers(engine: AsyncEngine) -> list:
    return database._SQLITE_FILES[engine]._idle_readers


async def test_reader_is_kept_and_sees_new_commits(engine: AsyncEngine) -> None:
    async with read_only(engine) as connection:
        first_driver = connection.driver
    await add(engine, "later")

    async with read_only(engine) as connection:
        assert connection.driver is first_driver
        assert list(await connection.scalars(text("SELECT name FROM items"))) == ["later"]
    assert not first_driver.in_transaction


async def test_failed_read_block_leaves_no_transaction(engine: AsyncEngine) -> None:
    with pytest.raises(Unavailable):
        async with read_only(engine) as connection:
            connection.driver.execute("SELECT * FROM missing_table")
    with pytest.raises(KeyError):
        async with read_only(engine) as connection:
            await connection.scalars(text("SELECT name FROM items"))
            raise KeyError("the caller failed")

    assert len(kept_readers(engine)) == 1
    assert not kept_readers(engine)[0].connection.driver_connection.in_transaction
    await add(engine, "after")
    assert await names(engine) == ["after"]


async def test_concurrent_reads_get_own_connections(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_inline, "MAX_IDLE_READERS", 2)
    drivers = []
    inside = asyncio.Event()

    async def read() -> None:
        async with read_only(engine) as connection:
            drivers.append(connection.driver)
            await inside.wait()

    readers = [asyncio.create_task(read()) for _ in range(4)]
    while len(drivers) < 4:
        await asyncio.sleep(0)
    inside.set()
    await asyncio.gather(*readers)

    assert len({id(driver) for driver in drivers}) == 4
    assert len(kept_readers(engine)) == 2


async def test_dispose_closes_kept_readers(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}")
    async with read_only(engine) as connection:
        driver = connection.driver
    await dispose(engine)

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        driver.execute("SELECT 1")
