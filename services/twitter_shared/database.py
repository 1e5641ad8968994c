"""Async SQLAlchemy engines for SQLite (embedded mode) and PostgreSQL, with one error policy.

Both back-ends run the same code and the same migrations. Driver errors are
translated into the project's ``Unavailable`` here, so a lost database becomes a
quick 503 instead of a stack trace.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, Result, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from twitter_shared.errors import Unavailable

# SQLite waits this long for another writer before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Reads on SQLite run on the event loop thread (see ``read_only``), so a reader that meets a lock
# must not stall every other request for long; in WAL mode readers almost never wait at all.
SQLITE_READER_BUSY_TIMEOUT_MS = 250

# The inline reader of each SQLite engine, set up by ``create_engine``.
_SQLITE_READERS: weakref.WeakKeyDictionary[AsyncEngine, Engine] = weakref.WeakKeyDictionary()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create an engine. For SQLite, also create the folder and switch on WAL, so readers do not block the writer."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        reader = sqlalchemy.create_engine(
            parsed.set(drivername="sqlite+pysqlite"), connect_args={"timeout": SQLITE_READER_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(reader, "connect", _configure_sqlite_reader)
        _SQLITE_READERS[engine] = reader
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=5)


def _configure_sqlite_connection(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _configure_sqlite_reader(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_READER_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


async def dispose(engine: AsyncEngine) -> None:
    """Close every pooled connection of ``engine``, and of its SQLite reader if it has one."""
    reader = _SQLITE_READERS.pop(engine, None)
    if reader is not None:
        reader.dispose()
    await engine.dispose()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Open a connection in a transaction, committing on success.

    Connection-level failures (server gone, pool exhausted) become ``Unavailable``;
    other database errors are programming errors and propagate as they are.
    """
    with _unavailable_on_connection_errors():
        async with engine.begin() as connection:
            yield connection


@contextmanager
def _unavailable_on_connection_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise Unavailable("The database is not available, try again shortly") from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise Unavailable("The database connection was lost, try again shortly") from error
        raise
    except (OSError, TimeoutError) as error:
        raise Unavailable("The database is not reachable, try again shortly") from error


@asynccontextmanager
async def read_only(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Open a connection for reads; same error policy as ``transaction``.

    On SQLite the statements run on the event loop thread through the standard
    library driver. aiosqlite hands every step of a statement to a thread and back,
    which cost more CPU than the reads themselves; a read in WAL mode does not wait
    for writers, so running it inline blocks the loop only for the read's own work.
    """
    reader = _SQLITE_READERS.get(engine)
    if reader is None:
        async with transaction(engine) as connection:
            yield connection
        return
    with _unavailable_on_connection_errors(), reader.connect() as connection:
        yield InlineConnection(connection)  # type: ignore[misc] - the subset of AsyncConnection reads use


class InlineConnection:
    """The read methods of ``AsyncConnection`` over a synchronous connection, run inline."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        return self._connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._connection.scalar(statement, parameters)

    async def scalars(self, statement: Any, parameters: Any = None) -> Any:
        return self._connection.scalars(statement, parameters)


async def ping(engine: AsyncEngine) -> None:
    async with transaction(engine) as connection:
        await connection.execute(text("SELECT 1"))
