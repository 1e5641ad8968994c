"""Hot statements handed straight to the driver: the SQL each back-end gets, the rows it returns, its times and errors.

``DriverQuery`` translates one SQL text for SQLite (named parameters, id lists
read with ``json_each``) and for PostgreSQL (``$n`` parameters, id lists as
arrays). ``fetch_rows`` and ``execute`` run it on real databases of both kinds.
Also here: the ``bound_sql`` page bounds those reads append, ``rfc3339`` on the
times they return, ``Unavailable`` for a driver error, and the single snapshot
of a SQLite read block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.postgres import PostgresServer
from twitter_shared.database import create_engine, dispose, read_only, transaction
from twitter_shared.driver_query import DriverQuery, execute, fetch_rows, rfc3339
from twitter_shared.errors import Unavailable
from twitter_shared.pagination import PageRequest, bound_sql

# (id, owner_id, label): owner 1 has ids 1 to 10, owner 2 has 11 and 12.
ITEMS = [(n, 1, f"item {n}") for n in range(1, 11)] + [(11, 2, "item 11"), (12, 2, "item 12")]
ITEMS_BY_IDS = DriverQuery("SELECT id, label FROM items WHERE id IN :ids ORDER BY id", id_lists=("ids",))
ITEMS_OF_OWNER = DriverQuery("SELECT id, label FROM items WHERE owner_id = :owner_id ORDER BY id")
COUNT_ITEMS = DriverQuery("SELECT count(*) FROM items")

moments = Table("moments", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(timezone=True)))


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer) -> str:
    """One database for the module; each test recreates the tables it reads."""
    return postgres_server.create_database("test_driver_query")


async def fill(engine: AsyncEngine) -> None:
    async with transaction(engine) as connection:
        await connection.execute(text("DROP TABLE IF EXISTS items"))
        await connection.execute(text("DROP TABLE IF EXISTS moments"))
        await connection.execute(text("CREATE TABLE items (id BIGINT PRIMARY KEY, owner_id BIGINT NOT NULL, label TEXT NOT NULL)"))
        await connection.execute(
            text("INSERT INTO items (id, owner_id, label) VALUES (:id, :owner_id, :label)"),
            [{"id": id_, "owner_id": owner_id, "label": label} for id_, owner_id, label in ITEMS],
        )
        await connection.execute(text("CREATE TABLE moments (id INTEGER PRIMARY KEY, at TIMESTAMP WITH TIME ZONE)"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a small ``items`` table, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await fill(engine)
    yield engine
    await dispose(engine)


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    await fill(engine)
    yield engine
    await dispose(engine)


# --- Translation -----------------------------------------------------------------------------


class TestTranslation:
    """The SQL text each driver gets."""

    def test_sqlite_named_parameters_and_json_each(self) -> None:
        query = DriverQuery("SELECT id FROM items WHERE owner_id = :owner_id AND id IN :ids", id_lists=("ids",))

        assert query.sqlite == (
            "SELECT id FROM items WHERE owner_id = :owner_id AND id IN (SELECT value FROM json_each(:ids))"
        )

    def test_postgresql_numbers_parameters_in_order_of_first_appearance(self) -> None:
        query = DriverQuery("SELECT id FROM items WHERE owner_id = :zeta AND id > :alpha AND id < :middle")

        assert query.postgresql == "SELECT id FROM items WHERE owner_id = $1 AND id > $2 AND id < $3"
        assert query.order == ["zeta", "alpha", "middle"]

    def test_postgresql_reuses_the_number_of_a_repeated_parameter(self) -> None:
        query = DriverQuery(
            "SELECT 1, id FROM a WHERE viewer = :viewer_id AND id IN :ids"
            " UNION ALL SELECT 2, id FROM b WHERE viewer = :viewer_id AND id IN :ids",
            id_lists=("ids",),
        )

        assert query.postgresql == (
            "SELECT 1, id FROM a WHERE viewer = $1 AND id IN (SELECT unnest($2::bigint[]))"
            " UNION ALL SELECT 2, id FROM b WHERE viewer = $1 AND id IN (SELECT unnest($2::bigint[]))"
        )
        assert query.order == ["viewer_id", "ids"]

    def test_postgresql_passes_id_lists_as_one_bigint_array(self) -> None:
        query = DriverQuery("SELECT id FROM items WHERE id IN :ids", id_lists=("ids",))

        assert query.postgresql == "SELECT id FROM items WHERE id IN (SELECT unnest($1::bigint[]))"

    def test_casts_are_left_alone(self) -> None:
        query = DriverQuery("SELECT id::text, created_at::date FROM items WHERE id = :id::bigint AND label = :label")

        assert query.postgresql == "SELECT id::text, created_at::date FROM items WHERE id = $1::bigint AND label = $2"
        assert query.order == ["id", "label"]
        assert query.sqlite == "SELECT id::text, created_at::date FROM items WHERE id = :id::bigint AND label = :label"

    def test_query_without_parameters_is_unchanged(self) -> None:
        query = DriverQuery("SELECT count(*) FROM items")

        assert (query.sqlite, query.postgresql, query.order) == ("SELECT count(*) FROM items", "SELECT count(*) FROM items", [])


# --- fetch_rows on real databases --------------------------------------------------------------


class TestFetchRows:
    """``fetch_rows`` on SQLite and PostgreSQL, from ``read_only`` and from ``transaction``."""

    async def test_list_parameter_selects_the_listed_ids(self, engine: AsyncEngine) -> None:
        async with read_only(engine) as connection:
            rows = await fetch_rows(connection, ITEMS_BY_IDS, ids=[7, 2, 99])

        assert [tuple(row) for row in rows] == [(2, "item 2"), (7, "item 7")]

    async def test_scalar_parameter_selects_its_rows(self, engine: AsyncEngine) -> None:
        async with read_only(engine) as connection:
            rows = await fetch_rows(connection, ITEMS_OF_OWNER, owner_id=2)

        assert [tuple(row) for row in rows] == [(11, "item 11"), (12, "item 12")]

    async def test_no_matching_rows_gives_an_empty_result(self, engine: AsyncEngine) -> None:
        async with read_only(engine) as connection:
            rows = await fetch_rows(connection, ITEMS_OF_OWNER, owner_id=404)

        assert list(rows) == []

    async def test_empty_id_list_gives_an_empty_result(self, engine: AsyncEngine) -> None:
        async with read_only(engine) as connection:
            rows = await fetch_rows(connection, ITEMS_BY_IDS, ids=[])

        assert list(rows) == []

    async def test_repeated_parameters_bind_the_same_values(self, engine: AsyncEngine) -> None:
        query = DriverQuery(
            "SELECT 1, id FROM items WHERE owner_id = :owner_id AND id IN :ids"
            " UNION ALL SELECT 2, id FROM items WHERE owner_id <> :owner_id AND id IN :ids ORDER BY 1, 2",
            id_lists=("ids",),
        )
        async with read_only(engine) as connection:
            rows = await fetch_rows(connection, query, owner_id=1, ids=[3, 11, 5])

        assert [tuple(row) for row in rows] == [(1, 3), (1, 5), (2, 11)]

    async def test_transaction_reads_own_write(self, engine: AsyncEngine) -> None:
        async with transaction(engine) as connection:
            await connection.execute(text("INSERT INTO items (id, owner_id, label) VALUES (13, 3, 'item 13')"))
            rows = await fetch_rows(connection, ITEMS_OF_OWNER, owner_id=3)

        assert [tuple(row) for row in rows] == [(13, "item 13")]

    async def test_stored_time_reads_as_rfc3339(self, engine: AsyncEngine) -> None:
        stored = datetime(2026, 12, 4, 20, 50, 15, 123456, tzinfo=UTC)
        async with transaction(engine) as connection:
            await connection.execute(moments.insert(), {"id": 1, "at": stored})
        async with read_only(engine) as connection:
            [(at,)] = await fetch_rows(connection, DriverQuery("SELECT at FROM moments WHERE id = :id"), id=1)

        assert rfc3339(at) == "2026-12-04T20:50:15.123Z"

    async def test_driver_time_reads_through_sqlalchemy(self, engine: AsyncEngine) -> None:
        written = datetime(2026, 12, 4, 21, 50, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
        async with transaction(engine) as connection:
            await execute(connection, DriverQuery("INSERT INTO moments (id, at) VALUES (:id, :at)"), id=2, at=written)
        async with read_only(engine) as connection:
            at = await connection.scalar(select(moments.c.at).where(moments.c.id == 2))

        assert at.replace(tzinfo=at.tzinfo or UTC) == written

    async def test_write_that_fails_changes_nothing(self, engine: AsyncEngine) -> None:
        insert_item = DriverQuery("INSERT INTO items (id, owner_id, label) VALUES (:id, :owner_id, :label)")
        # SQLite's driver raises its own error; PostgreSQL's comes wrapped by SQLAlchemy.
        with pytest.raises((sqlite3.IntegrityError, IntegrityError)):
            async with transaction(engine) as connection:
                await execute(connection, insert_item, id=14, owner_id=4, label="item 14")
                await execute(connection, insert_item, id=14, owner_id=4, label="again")
        async with read_only(engine) as connection:
            assert await fetch_rows(connection, ITEMS_OF_OWNER, owner_id=4) == []


# --- rfc3339 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-04 20:50:15.123456", "2026-12-04T20:50:15.123Z"),
        ("2026-12-04 20:50:15.999999", "2026-12-04T20:50:15.999Z"),
        ("2026-12-04 20:50:15", "2026-12-04T20:50:15.000Z"),
        (datetime(2026, 12, 4, 20, 50, 15, 123456), "2026-12-04T20:50:15.123Z"),
        (datetime(2026, 12, 4, 20, 50, 15, 999999), "2026-12-04T20:50:15.999Z"),
        (datetime(2026, 12, 4, 20, 50, 15, 123456, tzinfo=UTC), "2026-12-04T20:50:15.123Z"),
        (datetime(2026, 12, 4, 22, 50, 15, 123456, tzinfo=timezone(timedelta(hours=2))), "2026-12-04T20:50:15.123Z"),
        (datetime(2026, 12, 5, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))), "2026-12-04T23:00:00.000Z"),
        (datetime(2026, 12, 4, 20, 0, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-12-05T01:00:00.000Z"),
    ],
    ids=[
        "sqlite-text-with-microseconds",
        "sqlite-text-truncated-not-rounded",
        "sqlite-text-without-fraction",
        "naive-datetime",
        "naive-datetime-truncated-not-rounded",
        "utc-datetime",
        "east-of-utc-datetime",
        "east-of-utc-datetime-on-the-next-day",
        "west-of-utc-datetime-on-the-previous-day",
    ],
)
def test_rfc3339_gives_utc_with_milliseconds(stored: str | datetime, expected: str) -> None:
    assert rfc3339(stored) == expected


# --- Errors and snapshots on SQLite ----------------------------------------------------------


@pytest.mark.parametrize("block", [read_only, transaction], ids=["read_only", "transaction"])
async def test_driver_error_becomes_unavailable(sqlite_engine: AsyncEngine, block) -> None:  # noqa: ANN001
    with pytest.raises(Unavailable) as raised:
        async with block(sqlite_engine) as connection:
            await fetch_rows(connection, DriverQuery("SELECT id FROM missing WHERE id = :id"), id=1)

    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert "no such table" in str(raised.value.__cause__)


async def test_sqlite_read_block_sees_one_snapshot(sqlite_engine: AsyncEngine) -> None:
    async with read_only(sqlite_engine) as reader:
        [(before,)] = await fetch_rows(reader, COUNT_ITEMS)
        async with transaction(sqlite_engine) as writer:
            await writer.execute(text("INSERT INTO items (id, owner_id, label) VALUES (13, 3, 'item 13')"))
        [(again,)] = await fetch_rows(reader, COUNT_ITEMS)
        through_sqlalchemy = await reader.scalar(text("SELECT count(*) FROM items"))
        owner_3 = await fetch_rows(reader, ITEMS_OF_OWNER, owner_id=3)
    async with read_only(sqlite_engine) as later:
        [(after,)] = await fetch_rows(later, COUNT_ITEMS)

    assert (before, again, through_sqlalchemy, list(owner_3)) == (12, 12, 12, [])
    assert after == 13


async def test_failed_read_block_keeps_no_snapshot(sqlite_engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError):
        async with read_only(sqlite_engine) as reader:
            await fetch_rows(reader, COUNT_ITEMS)
            raise RuntimeError("the caller failed")
    async with transaction(sqlite_engine) as writer:
        await writer.execute(text("INSERT INTO items (id, owner_id, label) VALUES (13, 3, 'item 13')"))
    async with read_only(sqlite_engine) as later:
        [(after,)] = await fetch_rows(later, COUNT_ITEMS)

    assert after == 13


# --- bound_sql ---------------------------------------------------------------------------------


def page_id(page: PageRequest) -> str:
    return ",".join(f"{name}={value}" for name, value in vars(page).items() if value is not None)



@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (PageRequest(limit=3), [10, 9, 8]),
        (PageRequest(max_id=6, limit=3), [5, 4, 3]),
        (PageRequest(max_id=2, limit=3), [1]),
        (PageRequest(since_id=6, limit=3), [10, 9, 8]),
        (PageRequest(since_id=8, limit=3), [10, 9]),
        (PageRequest(min_id=6, limit=3), [9, 8, 7]),
        (PageRequest(min_id=8, limit=3), [10, 9]),
        (PageRequest(max_id=9, since_id=3, limit=10), [8, 7, 6, 5, 4]),
        (PageRequest(max_id=9, since_id=3, limit=2), [8, 7]),
        (PageRequest(max_id=9, min_id=3, limit=2), [5, 4]),
        (PageRequest(since_id=3, min_id=5, limit=3), [8, 7, 6]),
        (PageRequest(max_id=9, since_id=2, min_id=4, limit=2), [6, 5]),
        (PageRequest(max_id=1, limit=3), []),
    ],
    ids=lambda value: page_id(value) if isinstance(value, PageRequest) else None,
)
async def test_bound_sql_pages_newest_first(engine: AsyncEngine, page: PageRequest, expected: list[int]) -> None:
    query = DriverQuery("SELECT id FROM items WHERE owner_id = :owner_id" + bound_sql("id", page.shape))
    async with read_only(engine) as connection:
        rows = await fetch_rows(connection, query, owner_id=1, **page.bound_values())

    assert [id_ for (id_,) in page.newest_first(list(rows))] == expected
