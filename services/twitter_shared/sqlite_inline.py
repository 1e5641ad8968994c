"""SQLite statements run on the event loop thread, for embedded mode.

aiosqlite hands every step of a statement (cursor, execute, fetch, commit) to a
thread and back. On this project's short indexed statements those hand-offs cost
more CPU than SQLite's own work, so ``twitter_shared.database`` runs SQLite
through the standard library driver directly on the loop instead:

- Reads use their own connections with ``query_only`` set. In WAL mode a reader
  does not wait for the writer, so a read blocks the loop only for its own work.
- Writes go through one connection per process, taken in turn under an asyncio
  lock, so writers of one process queue in order instead of polling SQLite's
  lock. The connection has no busy timeout: ``BEGIN IMMEDIATE`` takes the write
  lock up front, and while another process (a tool, say) holds it, the attempt is
  retried with asyncio sleeps. Once the lock is held, the transaction's
  statements have nothing to wait for in WAL mode. Because there is no busy
  timeout, any other conflict fails at once (a 503) instead of blocking.

NOTE: a long statement blocks every request of its process while it runs. Whole-table
scans and WAL checkpoints go to a thread (``database.scalars_off_loop`` and
``sqlite_checkpoint``). Some long writes still run inline and have not been measured:
one fan-out of a consumer batch, and deleting an account's statuses.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Result
from sqlalchemy.exc import OperationalError

from twitter_shared.errors import Unavailable
from twitter_shared.sqlite_checkpoint import FALLBACK_CHECKPOINT_PAGES, WalCheckpointer

# How long a writer waits for its turn, and for another process's write lock, before a 503.
WRITE_WAIT_SECONDS = 10.0
# A reader that meets a lock, which is rare in WAL mode, waits this long. The writer waits this
# long only while it connects, before its busy timeout is set to zero.
BUSY_TIMEOUT_MS = 250
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
FIRST_RETRY_SECONDS = 0.001
MAX_RETRY_SECONDS = 0.05
# Reader connections kept open between reads. More than this many reads at once is rare, because
# a read block runs inline, and only a block that awaits something in between holds one longer.
MAX_IDLE_READERS = 8


class InlineConnection:
    """The statement methods of ``AsyncConnection`` over a synchronous connection, run inline."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        # The standard library connection underneath, for ``twitter_shared.driver_query``.
        self.driver: sqlite3.Connection = connection.connection.driver_connection

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        return self.connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.connection.scalar(statement, parameters)

    async def scalars(self, statement: Any, parameters: Any = None) -> Any:
        return self.connection.scalars(statement, parameters)


class SqliteFile:
    """The inline reader and writer of one SQLite database file."""

    def __init__(self, url: URL) -> None:
        sync_url = url.set(drivername="sqlite+pysqlite")
        connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000}
        self.reader = sqlalchemy.create_engine(sync_url, connect_args=connect_args)
        event.listen(self.reader, "connect", functools.partial(configure_connection, pragmas=READER_PRAGMAS))
        self.writer = sqlalchemy.create_engine(sync_url, connect_args=connect_args)
        event.listen(self.writer, "connect", functools.partial(configure_connection, pragmas=WRITER_PRAGMAS))
        self._write_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._idle_readers: list[Connection] = []
        in_memory = url.database in (None, "", ":memory:")
        self.checkpointer = None if in_memory else WalCheckpointer(url.database)

    def dispose(self) -> None:
        while self._idle_readers:
            self._idle_readers.pop().close()
        self.reader.dispose()
        self.writer.dispose()

    def scalars(self, statement: Any) -> list[Any]:
        """Run a read to completion on a reader connection; safe in a worker thread."""
        with self.reader.connect() as connection:
            return list(connection.scalars(statement))

    def begin_read(self) -> InlineConnection:
        """Begin a read transaction on a kept reader connection, which ``end_read`` ends.

        The reads of the transaction share one snapshot, and SQLite's read lock is taken once
        instead of once per statement. Connections are kept between reads because checking one
        out of SQLAlchemy's pool and back cost more than a home timeline page's query.
        """
        connection = self._idle_readers.pop() if self._idle_readers else self.reader.connect()
        inline = InlineConnection(connection)
        try:
            # Sent to the driver directly: through SQLAlchemy the BEGIN and ROLLBACK cost ten times more.
            inline.driver.execute("BEGIN")
        except BaseException:
            connection.close()
            raise
        return inline

    def end_read(self, inline: InlineConnection) -> None:
        connection = inline.connection
        try:
            if connection.in_transaction():
                connection.rollback()  # a SQLAlchemy statement ran, so SQLAlchemy's own transaction must end too
            else:
                inline.driver.rollback()
        except BaseException:
            connection.close()
            raise
        if len(self._idle_readers) < MAX_IDLE_READERS and not connection.invalidated:
            self._idle_readers.append(connection)
        else:
            connection.close()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[InlineConnection]:
        """Hold this process's write turn and SQLite's write lock; commit if the block succeeds."""
        deadline = time.monotonic() + WRITE_WAIT_SECONDS
        # Yield first, because a free lock is taken without suspending. Otherwise a caller that runs
        # many short transactions back to back, such as the timeline trim, blocks the loop for all of them.
        await asyncio.sleep(0)
        lock = self._write_lock()
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the lock is granted.
            async with asyncio.timeout(WRITE_WAIT_SECONDS):
                await lock.acquire()
        except TimeoutError as error:
            raise Unavailable("The database is busy, try again shortly") from error
        try:
            with self.writer.connect() as connection:
                await _begin_immediate(connection, deadline)
                yield InlineConnection(connection)
                connection.commit()
        finally:
            lock.release()
        if self.checkpointer is not None:
            self.checkpointer.after_commit(lock)

    def _write_lock(self) -> asyncio.Lock:
        # A lock belongs to one event loop; tests and tools may use one engine from several in turn.
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            self._write_locks = {known: held for known, held in self._write_locks.items() if not known.is_closed()}
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock


async def _begin_immediate(connection: Connection, deadline: float) -> None:
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as error:
            connection.rollback()
            if not _is_busy(error) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)


def _is_busy(error: OperationalError) -> bool:
    # Python reports extended result codes (SQLITE_BUSY_RECOVERY is 261); the low byte is the primary code.
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in {SQLITE_BUSY, SQLITE_LOCKED}


# Statement journals in memory: a fan-out's INSERT ... SELECT wrote one to a temporary file, a
# system call per page, which was a third of its cost.
SHARED_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "temp_store=MEMORY")
# BEGIN IMMEDIATE is retried with asyncio sleeps instead, because a busy wait in the writer would block
# the loop. Checkpoints run in a thread (``sqlite_checkpoint``); the writer's own is only a fallback.
WRITER_PRAGMAS = (*SHARED_PRAGMAS, "busy_timeout=0", f"wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
READER_PRAGMAS = (*SHARED_PRAGMAS, "query_only=ON")


def configure_connection(dbapi_connection, _record, pragmas: tuple[str, ...] = SHARED_PRAGMAS) -> None:  # noqa: ANN001 - DB-API objects
    """Set WAL mode and the other pragmas a connection to one of our SQLite files needs."""
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
