"""Async SQLAlchemy engines for SQLite (embedded mode) and PostgreSQL, with one error policy.

Both back-ends run the same code and the same migrations. Driver errors are
translated into the project's ``Unavailable`` here, so a lost database becomes a
quick 503 instead of a stack trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from twitter_shared.errors import Unavailable

# SQLite waits this long for another writer before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000


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
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=5)


def _configure_sqlite_connection(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Open a connection in a transaction, committing on success.

    Connection-level failures (server gone, pool exhausted) become ``Unavailable``;
    other database errors are programming errors and propagate as they are.
    """
    try:
        async with engine.begin() as connection:
            yield connection
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
    """Open a connection for reads; same error policy as ``transaction``."""
    async with transaction(engine) as connection:
        yield connection


async def ping(engine: AsyncEngine) -> None:
    async with transaction(engine) as connection:
        await connection.execute(text("SELECT 1"))
