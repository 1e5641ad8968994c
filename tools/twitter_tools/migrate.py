"""``twitter-system migrate [DATABASE ...]``: apply Alembic migrations, one database after another."""

from __future__ import annotations

import argparse
import asyncio

import structlog

from twitter_shared.logs import configure_logging
from twitter_shared.migrate import MigrationError, upgrade
from twitter_shared.settings import DATABASE_OWNERS, ServiceName, Settings

log = structlog.get_logger()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # No argparse choices: Python 3.11 checks an empty nargs="*" list against them and rejects it.
    parser.add_argument("databases", nargs="*", help="databases to migrate: account, post, timeline (default: all three)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="migrate", log_format=settings.log_format, level=settings.log_level)
    unknown = sorted(set(args.databases) - {str(owner) for owner in DATABASE_OWNERS})
    if unknown:
        log.error("migrate.unknown_database", databases=unknown, known=[str(owner) for owner in DATABASE_OWNERS])
        return 2
    owners = [ServiceName(name) for name in args.databases] or list(DATABASE_OWNERS)
    for owner in owners:
        try:
            asyncio.run(upgrade(settings.database_url(owner), history=owner))
        except MigrationError as error:
            log.error("migrate.failed", database=owner, error=str(error), action="fix the cause and run migrate again")
            return 1
    return 0
