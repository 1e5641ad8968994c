"""Async SQLAlchemy engines for SQLite (embedded mode) and PostgreSQL, with one error policy.

Both back-ends run the same code and the same migrations. Driver errors are
translated into the project's ``Unavailable`` here, so a lost database becomes a
quick 503 instead of a stack trace.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Executable, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from twitter_shared.errors import Unavailable
from twitter_shared.sqlite_inline import InlineConnection, SqliteFile, configure_connection

# SQLSTATE classes of PostgreSQL errors that mean the server, not the statement, is at fault.
POSTGRESQL_UNAVAILABLE_CLASSES = frozenset({"08", "57"})
# Migrations on SQLite wait this long for another process's write lock.
MIGRATION_BUSY_TIMEOUT_SECONDS = 10.0
# The async engine of a SQLite file serves migrations, which Alembic runs through it. Statements
# go through the file's inline reader and writer, found here by the engine.
_SQLITE_FILES: weakref.WeakKeyDictionary[AsyncEngine, SqliteFile] = weakref.WeakKeyDictionary()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """Create an engine. For SQLite, also create the folder and switch on WAL, so readers do not block the writer."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": MIGRATION_BUSY_TIMEOUT_SECONDS})
        event.listen(engine.sync_engine, "connect", configure_connection)
        _SQLITE_FILES[engine] = SqliteFile(parsed)
        return engine
    # No overflow: connections opened past the pool were closed again on return, so under steady
    # load every request beyond the pool paid for a new connection.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=5)
    event.listen(engine.sync_engine, "checkout", _pass_over_closed_connection)
    return engine


def _pass_over_closed_connection(driver_adapter: Any, record: object, proxy: object) -> None:
    """Make the pool open a new connection in place of one the server has closed since it was pooled.

    This replaces SQLAlchemy's pre-ping, which queries the server on every checkout. Outside a
    transaction, asyncpg's ping is BEGIN, an empty query and ROLLBACK: three round trips, which
    cost a home read more than its own query. A server that stops or restarts closes its
    connections, and asyncpg marks them closed as soon as the event loop reads that.

    NOTE: a connection to a host that vanished without closing it still looks open here, and
    no statement timeout is set: a statement on it waits until the caller's own timeout (the
    gateway's 5 s to a service). The pool replaces it only once asyncpg detects that it is closed.
    """
    if driver_adapter.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


async def dispose(engine: AsyncEngine) -> None:
    """Close every pooled connection of ``engine``, and its SQLite file's inline connections."""
    sqlite_file = _SQLITE_FILES.pop(engine, None)
    if sqlite_file is not None:
        sqlite_file.dispose()
    await engine.dispose()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Open a connection in a transaction, committing on success.

    Connection-level failures (server gone, pool exhausted) become ``Unavailable``;
    other database errors are programming errors and propagate as they are.
    """
    sqlite_file = _SQLITE_FILES.get(engine)
    with _unavailable_on_connection_errors():
        if sqlite_file is not None:
            async with sqlite_file.writing() as inline:
                yield inline  # type: ignore[misc] - the statement methods of AsyncConnection
        else:
            async with engine.begin() as connection:
                yield connection


@contextmanager
def _unavailable_on_connection_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        unavailable = _as_unavailable(error)
        if unavailable is None:
            raise
        raise unavailable from error


def _as_unavailable(error: BaseException) -> Unavailable | None:
    """Return the ``Unavailable`` that a connection-level failure becomes, or None for any other error."""
    # The standard library's own errors come from statements handed straight to the driver (driver_query).
    if isinstance(error, (OperationalError, InterfaceError, sqlite3.OperationalError)):
        return Unavailable("The database is not available, try again shortly")
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return Unavailable("The database connection was lost, try again shortly")
        # While PostgreSQL starts or stops, it refuses connections with a class 57 code (57P03:
        # "the database system is starting up" or "is shutting down"); class 08 is a broken connection.
        if str(getattr(error.orig, "sqlstate", ""))[:2] in POSTGRESQL_UNAVAILABLE_CLASSES:
            return Unavailable("The database is not available, try again shortly")
        return None
    if isinstance(error, asyncpg.PostgresError):
        # Statements sent straight to asyncpg (driver_query) raise its own errors, unwrapped by SQLAlchemy.
        if str(error.sqlstate)[:2] in POSTGRESQL_UNAVAILABLE_CLASSES:
            return Unavailable("The database is not available, try again shortly")
        return None
    if isinstance(error, PoolTimeout):
        # Every pooled connection stayed checked out for the pool's whole timeout.
        return Unavailable("The database is busy, try again shortly")
    if isinstance(error, (OSError, TimeoutError)):
        return Unavailable("The database is not reachable, try again shortly")
    return None


def read_only(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """Open a connection for reads; same error policy as ``transaction``.

    On both back-ends it has only ``execute``, ``scalar``, ``scalars`` and ``dialect`` of
    ``AsyncConnection``, besides what ``twitter_shared.driver_query`` uses.
    """
    sqlite_file = _SQLITE_FILES.get(engine)
    if sqlite_file is not None:
        return _SqliteRead(sqlite_file)  # type: ignore[return-value] - the statement methods of AsyncConnection
    return _postgresql_read(engine)


class _SqliteRead:
    """A read block on a SQLite file. It is a class, not a generator, because it runs twice on every home timeline read."""

    __slots__ = ("sqlite_file", "inline")

    def __init__(self, sqlite_file: SqliteFile) -> None:
        self.sqlite_file = sqlite_file
        self.inline: InlineConnection | None = None

    async def __aenter__(self) -> InlineConnection:
        with _unavailable_on_connection_errors():
            self.inline = self.sqlite_file.begin_read()
        return self.inline

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        assert self.inline is not None
        with _unavailable_on_connection_errors():
            self.sqlite_file.end_read(self.inline)
        unavailable = _as_unavailable(error) if isinstance(error, Exception) else None
        if unavailable is not None:
            raise unavailable from error


class PostgresRead:
    """A read block's PostgreSQL connection: the statement methods of ``AsyncConnection``, and the asyncpg connection under it."""

    __slots__ = ("connection", "dialect", "driver")

    def __init__(self, connection: AsyncConnection, driver: asyncpg.Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        # The block runs in autocommit, so a statement sent straight to the driver cannot fall
        # outside a transaction that SQLAlchemy would have begun.
        self.driver = driver

    async def fetch(self, sql: str, arguments: tuple[Any, ...]) -> list[asyncpg.Record]:
        """Run a statement with ``$n`` parameters straight on asyncpg and return its rows."""
        try:
            return await self.driver.fetch(sql, *arguments)
        except asyncpg.InterfaceError as error:
            # asyncpg raises a plain InterfaceError when the server closed the connection before this statement.
            if self.driver.is_closed():
                raise Unavailable("The database connection was lost, try again shortly") from error
            raise

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self.connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return await self.connection.scalar(statement, parameters)

    async def scalars(self, statement: Any, parameters: Any = None) -> Any:
        return await self.connection.scalars(statement, parameters)


@asynccontextmanager
async def _postgresql_read(engine: AsyncEngine) -> AsyncIterator[PostgresRead]:
    with _unavailable_on_connection_errors():
        # Without BEGIN and COMMIT: at PostgreSQL's READ COMMITTED each statement takes its own
        # snapshot anyway, and the two would add a round trip each.
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            pooled = await autocommit.get_raw_connection()
            yield PostgresRead(autocommit, pooled.driver_connection)


async def scalars_off_loop(engine: AsyncEngine, statement: Executable) -> list[Any]:
    """Run a long read (a scan of a whole table) without holding up the event loop, and return its scalars.

    On SQLite, where reads run on the loop, it runs in a worker thread on a connection of its
    own. On PostgreSQL the driver is asynchronous anyway.
    """
    sqlite_file = _SQLITE_FILES.get(engine)
    with _unavailable_on_connection_errors():
        if sqlite_file is not None:
            return await asyncio.to_thread(sqlite_file.scalars, statement)
        async with engine.connect() as connection:
            return list(await connection.scalars(statement))


async def ping(engine: AsyncEngine) -> None:
    """Check that the database responds. On SQLite this takes no write lock, so a busy writer does not look like a lost database."""
    async with read_only(engine) as connection:
        await connection.execute(text("SELECT 1"))
