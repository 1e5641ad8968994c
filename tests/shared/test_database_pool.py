"""Pooled PostgreSQL connections across a server restart, and errors of statements sent straight to asyncpg.

The pool opens new connections in place of closed ones without querying the server first.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.postgres import PostgresServer
from twitter_shared.database import create_engine, dispose, read_only, transaction
from twitter_shared.driver_query import DriverQuery, fetch_rows
from twitter_shared.errors import Unavailable

SELECT_ONE = DriverQuery("SELECT 1")


async def read_one(engine: AsyncEngine) -> int:
    async with read_only(engine) as connection:
        return await connection.scalar(text("SELECT 1"))


async def test_pool_reconnects_after_restart(own_postgres: PostgresServer) -> None:
    engine = create_engine(own_postgres.create_database("pool"), pool_size=2)
    try:
        # Two connections in the pool, both opened before the restart.
        await asyncio.gather(*(asyncio.create_task(_hold_a_read(engine)) for _ in range(2)))
        own_postgres.stop()
        own_postgres.start()
        # The event loop reads the server's end of each old connection.
        await asyncio.sleep(0.2)

        first_read = await read_one(engine)
        async with transaction(engine) as connection:
            written = await connection.scalar(text("SELECT 2"))
    finally:
        await dispose(engine)

    assert (first_read, written) == (1, 2)


async def test_read_during_outage_is_unavailable(own_postgres: PostgresServer) -> None:
    engine = create_engine(own_postgres.create_database("pool"), pool_size=1)
    try:
        await read_one(engine)
        own_postgres.stop()
        await asyncio.sleep(0.2)
        with pytest.raises(Unavailable):
            await read_one(engine)
        own_postgres.start()
        after = await read_one(engine)
    finally:
        await dispose(engine)

    assert after == 1


async def test_closed_connection_read_is_unavailable(own_postgres: PostgresServer) -> None:
    engine = create_engine(own_postgres.create_database("pool"), pool_size=1)
    try:
        with pytest.raises(Unavailable, match="connection was lost"):
            async with read_only(engine) as connection:
                own_postgres.stop()
                await asyncio.sleep(0.2)
                await fetch_rows(connection, SELECT_ONE)
        own_postgres.start()
        async with read_only(engine) as connection:
            after = await fetch_rows(connection, SELECT_ONE)
    finally:
        await dispose(engine)

    assert [tuple(row) for row in after] == [(1,)]


async def test_driver_statement_error_propagates(own_postgres: PostgresServer) -> None:
    engine = create_engine(own_postgres.create_database("pool"), pool_size=1)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            async with read_only(engine) as connection:
                await fetch_rows(connection, DriverQuery("SELECT id FROM no_such_table"))
        async with read_only(engine) as connection:
            after = await fetch_rows(connection, SELECT_ONE)
    finally:
        await dispose(engine)

    assert [tuple(row) for row in after] == [(1,)]


async def _hold_a_read(engine: AsyncEngine) -> None:
    async with read_only(engine) as connection:
        await connection.scalar(text("SELECT pg_sleep(0.05)"))
