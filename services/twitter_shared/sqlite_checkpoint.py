"""WAL checkpoints of an embedded SQLite file, run in a worker thread instead of inside a commit.

By default SQLite copies the write-ahead log back into the database file inside the
commit that takes the log past 1,000 pages. With inline statements that commit runs
on the event loop, so every request of the process waited for the copy. A home
timeline fan-out also dirties one page per follower, and the same pages again with
the next post, so copying them once a second instead of every few posts writes each
page fewer times.

The writer connection keeps an automatic checkpoint at ``FALLBACK_CHECKPOINT_PAGES``,
far above what a second of writes adds, so the log stays bounded even if the
thread falls behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import structlog

log = structlog.get_logger()

CHECKPOINT_INTERVAL_SECONDS = 1.0
# About 80 MB of 4 KB pages; at this size the committing writer checkpoints itself, as SQLite does by default.
FALLBACK_CHECKPOINT_PAGES = 20_000
CHECKPOINT_BUSY_TIMEOUT_SECONDS = 0.25


class WalCheckpointer:
    """Starts a passive checkpoint of one database file after a commit, at most once per interval."""

    def __init__(self, path: str, *, interval_seconds: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval_seconds = interval_seconds
        self._last_started = time.monotonic()
        self._running: asyncio.Future[tuple[int, int, int]] | None = None

    def after_commit(self) -> None:
        """Called on the event loop after each commit; returns at once."""
        if self._running is not None and not self._running.done():
            return
        now = time.monotonic()
        if now - self._last_started < self.interval_seconds:
            return
        self._last_started = now
        self._running = asyncio.get_running_loop().run_in_executor(None, self.checkpoint)
        self._running.add_done_callback(_log_failure)

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy what it can of the log into the file without waiting for readers or the writer.

        Returns SQLite's result row: 1 if it was blocked, the pages in the log, and the pages copied.
        """
        connection = sqlite3.connect(self.path, timeout=CHECKPOINT_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            blocked, log_pages, copied_pages = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            connection.close()
        return blocked, log_pages, copied_pages


def _log_failure(future: asyncio.Future[tuple[int, int, int]]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        # The next interval tries again, and the fallback keeps the log bounded meanwhile.
        log.warning("sqlite.checkpoint_failed", error=repr(error))
