"""WAL checkpoints of embedded SQLite run in a worker thread, at most once per interval, and never lose a row."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from twitter_shared import database
from twitter_shared.database import create_engine, dispose, transaction
from twitter_shared.sqlite_checkpoint import FALLBACK_CHECKPOINT_PAGES, WalCheckpointer

SQLITE_TEMP_STORE_MEMORY = 2


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    async with transaction(engine) as connection:
        await connection.execute(text("CREATE TABLE items (n INTEGER PRIMARY KEY, filler TEXT)"))
    yield engine
    await dispose(engine)


def checkpointer_of(engine: AsyncEngine) -> WalCheckpointer:
    checkpointer = database._SQLITE_FILES[engine].checkpointer
    assert checkpointer is not None
    return checkpointer


async def add_rows(engine: AsyncEngine, start: int, count: int) -> None:
    for n in range(start, start + count):
        async with transaction(engine) as connection:
            await connection.execute(text("INSERT INTO items VALUES (:n, :filler)"), {"n": n, "filler": "x" * 2000})


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM items").fetchone()[0]


async def test_checkpoint_runs_in_thread(engine: AsyncEngine, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    checkpointer = checkpointer_of(engine)
    threads: list[str] = []
    answers: list[tuple[int, int, int]] = []
    real_checkpoint = checkpointer.checkpoint

    def recording_checkpoint() -> tuple[int, int, int]:
        threads.append(threading.current_thread().name)
        answers.append(real_checkpoint())
        return answers[-1]

    monkeypatch.setattr(checkpointer, "checkpoint", recording_checkpoint)
    checkpointer.interval_seconds = 0.0
    await add_rows(engine, 0, 20)
    await checkpointer._running

    assert threads
    assert threading.main_thread().name not in threads
    blocked, log_pages, copied_pages = answers[-1]
    assert blocked == 0
    assert log_pages > 0
    assert copied_pages == log_pages
    assert count_rows(tmp_path / "wal.db") == 20


async def test_one_checkpoint_per_interval(engine: AsyncEngine, monkeypatch) -> None:  # noqa: ANN001
    checkpointer = checkpointer_of(engine)
    calls: list[int] = []
    monkeypatch.setattr(checkpointer, "checkpoint", lambda: calls.append(1) or (0, 0, 0))
    checkpointer.interval_seconds = 3600
    checkpointer._last_started -= 3600

    await add_rows(engine, 0, 30)
    await checkpointer._running

    assert calls == [1]


async def test_failed_checkpoint_logged_and_retried(engine: AsyncEngine, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    checkpointer = checkpointer_of(engine)
    real_checkpoint = checkpointer.checkpoint
    attempts: list[str] = []

    def failing_once() -> tuple[int, int, int]:
        attempts.append("tried")
        if len(attempts) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real_checkpoint()

    monkeypatch.setattr(checkpointer, "checkpoint", failing_once)
    checkpointer.interval_seconds = 0.0
    with capture_logs() as logs:
        await add_rows(engine, 0, 1)
        await asyncio.gather(checkpointer._running, return_exceptions=True)
        await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
        await add_rows(engine, 1, 1)
        await checkpointer._running

    assert attempts == ["tried", "tried"]
    assert [entry["event"] for entry in logs if entry["event"].startswith("sqlite.")] == ["sqlite.checkpoint_failed"]
    assert count_rows(tmp_path / "wal.db") == 2


async def test_checkpoint_finishes_under_writes(engine: AsyncEngine) -> None:
    """The checkpoint takes the write turn, so it copies the whole log however busy the writers are."""
    checkpointer = checkpointer_of(engine)
    await add_rows(engine, 0, 50)
    checkpointer.interval_seconds = 0.0
    writers = [asyncio.create_task(add_rows(engine, start, 20)) for start in range(1_000, 1_200, 20)]
    await asyncio.sleep(0)
    await add_rows(engine, 50, 1)
    blocked, log_pages, copied_pages = await checkpointer._running
    await asyncio.gather(*writers)

    assert blocked == 0
    assert copied_pages == log_pages


async def test_checkpoint_never_creates_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    checkpointer = WalCheckpointer(str(missing))

    with pytest.raises(sqlite3.OperationalError):
        checkpointer.checkpoint()
    assert not missing.exists()


async def test_writer_pragmas_fallback_and_memory(engine: AsyncEngine) -> None:
    async with transaction(engine) as connection:
        autocheckpoint = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        temp_store = (await connection.execute(text("PRAGMA temp_store"))).scalar()

    assert autocheckpoint == FALLBACK_CHECKPOINT_PAGES
    assert temp_store == SQLITE_TEMP_STORE_MEMORY


async def test_memory_database_no_checkpointer() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert database._SQLITE_FILES[engine].checkpointer is None
    finally:
        await dispose(engine)
