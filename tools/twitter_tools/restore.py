"""``twitter-system restore``: verify a backup completely, then load it into the databases.

No database is touched until the whole backup has passed verification. The
manifest must be well formed and list the account and post databases. Every file
must have the size and SHA-256 that the manifest gives. Each dump must be a
readable archive whose engine matches the configured database. Only then is each
database restored, each in one transaction. The timeline database is not in a backup,
so the command ends by asking for ``twitter-system rebuild-timelines``.

Stop the services before restoring: ``pg_restore --clean`` waits for their
locks on the tables it drops, and they would keep serving data the restore
then replaces.

Exit codes: 0 success, 1 a restore step failed, 2 invalid settings, options or
backup name, 3 a backup or restore is running on the folder, 4 the backup
failed verification (no database was changed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import structlog

from twitter_shared.logs import configure_logging
from twitter_shared.settings import Settings
from twitter_tools._backup_errors import (
    BackupError,
    BackupVerificationError,
    RestoreError,
    report_failure,
    stop_signals_raise,
)
from twitter_tools._backup_files import backup_folder_lock, latest_backup, resolve_backup, verify_backup
from twitter_tools._database_dumps import DatabaseTarget, check_dump, database_target, restore_database
from twitter_tools.backup import BACKED_UP_DATABASES

log = structlog.get_logger(__name__)

NEXT_STEP = "run `twitter-system rebuild-timelines`: the timeline database is not part of a backup"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "backup",
        nargs="?",
        metavar="BACKUP",
        help="backup folder name inside the backup folder (20261204T203000Z-1a2b3c4d), or a path to one",
    )
    choice.add_argument("--latest", action="store_true", help="restore the newest backup in the backup folder")
    parser.add_argument(
        "--dest",
        type=Path,
        help="backup folder to read from (default: TWITTER_BACKUP_DIR, else backups/ under the data folder)",
    )
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="verify the backup and stop without touching any database",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="restore", log_format=settings.log_format, level=settings.log_level)
    folder = args.dest or settings.backup_folder()
    try:
        backup = latest_backup(folder) if args.latest else resolve_backup(args.backup, folder=folder)
        with stop_signals_raise():
            restore_backup(settings=settings, backup=backup, verify_only=args.verify_only)
    except BackupError as error:
        return report_failure("restore", error)

    if args.verify_only:
        print(f"Backup {backup} is complete and intact; no database was changed.")
    else:
        print(f"Restored backup {backup}. Next, {NEXT_STEP}.")
    return 0


def restore_backup(*, settings: Settings, backup: Path, verify_only: bool = False) -> None:
    """Verify ``backup`` and, unless ``verify_only``, restore it into the configured databases.

    Raises ``BackupVerificationError`` before any database is touched when the
    backup is incomplete, corrupted or does not fit the configured databases,
    and ``RestoreError`` when loading a dump fails.
    """
    expected = tuple(owner.value for owner in BACKED_UP_DATABASES)
    targets = {owner.value: database_target(settings.database_url(owner)) for owner in BACKED_UP_DATABASES}

    # A backup run could prune this folder while it is being read, so restores
    # take the same lock. Read-only cold storage cannot be pruned and needs none.
    with backup_folder_lock(backup.parent, required=False):
        started = time.monotonic()
        manifest = verify_backup(backup, expected_databases=expected)
        for entry in manifest.files:
            _check_fits(entry.database, entry.engine, targets[entry.database])
            check_dump(entry.engine, database=entry.database, dump=backup / entry.file)
        log.info(
            "restore.verified",
            backup=str(backup),
            created_at=manifest.created_at,
            project_version=manifest.project_version,
        )
        if verify_only:
            return

        restored: list[str] = []
        for entry in manifest.files:
            database_started = time.monotonic()
            target = targets[entry.database]
            try:
                restore_database(target, database=entry.database, dump=backup / entry.file)
            except RestoreError as error:
                # Each database restores atomically, but not all of them together.
                if restored:
                    raise RestoreError(f"{error}; already restored from this backup: {', '.join(restored)}") from error
                raise
            restored.append(entry.database)
            log.info(
                "restore.database_restored",
                database=entry.database,
                engine=entry.engine,
                into=target.describe(),
                duration_seconds=round(time.monotonic() - database_started, 3),
            )

    log.info(
        "restore.finished",
        backup=str(backup),
        duration_seconds=round(time.monotonic() - started, 3),
        next_step=NEXT_STEP,
    )


def _check_fits(database: str, engine: str, target: DatabaseTarget) -> None:
    if engine != target.engine:
        raise BackupVerificationError(
            f"the backup contains a {engine} dump of the {database} database, but the configured {database} "
            f"database is {target.engine}: restore it into a {engine} database"
        )
