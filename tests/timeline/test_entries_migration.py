"""The migration to owner-keyed home entries keeps every entry and leaves the primary key as the only index."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from tests.support.postgres import PostgresServer
from twitter_shared.database import create_engine, dispose
from twitter_shared.migrate import alembic_config, upgrade
from twitter_timeline.tables import home_entries

ENTRIES = [(1, 10, 1, None), (2, 10, 1, None), (2, 11, 3, 10), (3, 12, 3, None)]


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config("timeline")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _index_names(connection: Connection) -> list[str]:
    return sorted(index["name"] for index in inspect(connection).get_indexes("home_entries"))


# What a run stopped during the copy leaves on SQLite: its DDL statements had committed on their own.
INTERRUPTED_RUN = (
    "DROP INDEX home_entries_by_status",
    "CREATE TABLE home_entries_clustered (owner_id BIGINT, status_id BIGINT, author_id BIGINT, reblog_of_id BIGINT,"
    " PRIMARY KEY (owner_id, status_id)) WITHOUT ROWID",
    "INSERT INTO home_entries_clustered VALUES (9, 9, 9, NULL)",
)


async def migrate_with_entries(url: str, *, interrupted_before: bool = False) -> tuple[list[tuple], list[str], str]:
    """Fill the first revision's table, upgrade to head; return the entries, the indexes and the table's SQL on SQLite."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_to, "timeline_0001")
            await connection.commit()
            await connection.execute(
                home_entries.insert(),
                [dict(zip(("owner_id", "status_id", "author_id", "reblog_of_id"), entry, strict=True)) for entry in ENTRIES],
            )
            for statement in INTERRUPTED_RUN if interrupted_before else ():
                await connection.execute(text(statement))
            await connection.commit()
        await upgrade(url, history="timeline")
        async with engine.connect() as connection:
            rows = (await connection.execute(select(home_entries).order_by(home_entries.c.owner_id, home_entries.c.status_id))).all()
            indexes = await connection.run_sync(_index_names)
            table_sql = ""
            if connection.dialect.name == "sqlite":
                table_sql = (await connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'home_entries'"))).scalar()
    finally:
        await dispose(engine)
    return [tuple(row) for row in rows], indexes, table_sql


async def test_sqlite_entries_kept_and_clustered(tmp_path: Path) -> None:
    rows, indexes, table_sql = await migrate_with_entries(f"sqlite+aiosqlite:///{tmp_path / 'timeline.db'}")

    assert rows == ENTRIES
    assert indexes == []
    assert "WITHOUT ROWID" in table_sql


async def test_sqlite_migration_reruns_after_interruption(tmp_path: Path) -> None:
    rows, indexes, table_sql = await migrate_with_entries(f"sqlite+aiosqlite:///{tmp_path / 'timeline.db'}", interrupted_before=True)

    assert rows == ENTRIES
    assert indexes == []
    assert "WITHOUT ROWID" in table_sql


@pytest.mark.postgres
async def test_postgres_entries_kept_indexes_dropped(postgres_server: PostgresServer) -> None:
    rows, indexes, _ = await migrate_with_entries(postgres_server.create_database("entries_migration"))

    assert rows == ENTRIES
    assert indexes == []
