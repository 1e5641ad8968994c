"""WAL checkpoints of an embedded SQLite file, run in a worker thread instead of inside a commit.

By default SQLite copies the write-ahead log back into the database file inside the
commit that takes the log past 1,000 pages. With inline statements that commit runs
on the event loop, so every request of the process waited for the copy. A home
timeline fan-out also dirties one page per follower, and the same pages again with
the next post, so copying them once a second instead of every few posts writes each
page fewer times.

The checkpoint takes the process's write turn while it runs. Under a stream of
commits it could otherwise never finish copying the log, and SQLite starts a log
afresh only after a finished checkpoint. Reads go on meanwhile. The writer
connection keeps an automatic checkpoint at ``FALLBACK_CHECKPOINT_PAGES``, far above
what a second of writes adds, so the log stays bounded even if the thread falls behind.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from urllib.parse import quote

import structlog

log = structlog.get_logger()

CHECKPOINT_INTERVAL_SECONDS = 1.0
# About 80 MB of 4 KB pages; at this size the committing writer checkpoints itself, as SQLite does by default.
FALLBACK_CHECKPOINT_PAGES = 20_000
CHECKPOINT_BUSY_TIMEOUT_SECONDS = 0.25


class WalCheckpointer:
    """Background checkpoints of one database file: one at a time, started after a commit at most once per interval."""

    def __init__(self, path: str, *, interval_seconds: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval_seconds = interval_seconds
        self._last_started = time.monotonic()
        self._running: asyncio.Task[tuple[int, int, int]] | None = None

    def after_commit(self, write_turn: asyncio.Lock) -> None:
        """Start a checkpoint if the interval has passed; called on the event loop after each commit, returns at once."""
        if self._running is not None and not self._running.done():
            return
        now = time.monotonic()
        if now - self._last_started < self.interval_seconds:
            return
        self._last_started = now
        self._running = asyncio.get_running_loop().create_task(self._checkpoint_in_turn(write_turn))
        self._running.add_done_callback(functools.partial(_log_failure, self.path))

    async def _checkpoint_in_turn(self, write_turn: asyncio.Lock) -> tuple[int, int, int]:
        async with write_turn:
            return await asyncio.get_running_loop().run_in_executor(None, self.checkpoint)

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy what it can of the log into the file without waiting for readers or another process's writer.

        Returns SQLite's result row: 1 if it was blocked, the pages in the log, and the pages copied.
        """
        # mode=rw: a database file that has gone is an error here, not a new empty file.
        target = f"file:{quote(self.path)}?mode=rw"
        connection = sqlite3.connect(target, uri=True, timeout=CHECKPOINT_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            blocked, log_pages, copied_pages = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            connection.close()
        return blocked, log_pages, copied_pages


def _log_failure(path: str, task: asyncio.Task[tuple[int, int, int]]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        # The next interval tries again, and the fallback keeps the log bounded meanwhile.
        log.warning("sqlite.checkpoint_failed", database=path, error=repr(error))
