"""Apply a database's Alembic history under a lock, so replicas starting together never race.

PostgreSQL: a session-level advisory lock held for the whole upgrade. SQLite: an
exclusive ``flock`` on a file beside the database. A second runner waits for the
first, then finds nothing left to do.
"""

from __future__ import annotations

import fcntl
import importlib.resources
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from twitter_shared.database import create_engine, dispose, is_sqlite

log = structlog.get_logger()

MIGRATION_LOCK_KEY = 7_411_002


class MigrationError(Exception):
    """Migrations could not be applied; the database is left at its previous revision."""


def alembic_config(history: str) -> Config:
    location = importlib.resources.files("twitter_migrations") / history
    config = Config()
    config.set_main_option("script_location", str(location))
    return config


def head_revision(history: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(history)).get_current_head()
    if head is None:
        raise MigrationError(f"the {history} history has no revisions")
    return head


async def upgrade(url: str, *, history: str) -> str:
    """Upgrade the database at ``url`` to the head of ``history``; return the revision it is at."""
    config = alembic_config(history)
    engine = None
    try:
        engine = create_engine(url)
        with _sqlite_file_lock(url):
            async with engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    await connection.commit()
                try:
                    before = await connection.run_sync(_current_revision)
                    await connection.run_sync(_upgrade_to_head, config)
                    await connection.commit()
                    after = await connection.run_sync(_current_revision)
                finally:
                    if connection.dialect.name == "postgresql":
                        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                        await connection.commit()
    except MigrationError:
        raise
    except Exception as error:
        raise MigrationError(f"migrating the {history} database failed: {error}") from error
    finally:
        if engine is not None:
            await dispose(engine)
    log.info("migrate.finished", database=history, before=before, after=after)
    return after or ""


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await dispose(engine)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    if not is_sqlite(url):
        yield
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield
