"""``twitter-system backup``: dump every database that needs a backup into one new folder.

The account and post databases are dumped; the timeline database is left out
because ``twitter-system rebuild-timelines`` regenerates it from the other two.
Each run writes one timestamped folder with a manifest of sizes and SHA-256
checksums (layout in ``_backup_files``), reports success only after every dump
passed its checks, then prunes all but the newest N backups. A failed run
prunes nothing and leaves no partial folder. Runs on one backup folder never
overlap: the second one exits at once with exit code 3.

Exit codes: 0 success, 1 the backup failed, 2 invalid settings or options,
3 another backup or restore is running.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from twitter_shared.logs import configure_logging
from twitter_shared.settings import DATABASE_OWNERS, ServiceName, Settings
from twitter_tools._backup_errors import (
    BackupError,
    BackupUsageError,
    DumpError,
    report_failure,
    stop_signals_raise,
)
from twitter_tools._backup_files import (
    PARTIAL_PREFIX,
    Manifest,
    ManifestEntry,
    backup_folder_lock,
    file_sha256,
    fsync_path,
    new_backup_name,
    prune_backups,
    remove_leftovers,
    write_manifest,
)
from twitter_tools._database_dumps import DatabaseTarget, database_target, dump_database, dump_file_name

log = structlog.get_logger(__name__)

# rebuild-timelines regenerates these from the account and post data.
REBUILDABLE_DATABASES = frozenset({ServiceName.TIMELINE})
BACKED_UP_DATABASES = tuple(owner for owner in DATABASE_OWNERS if owner not in REBUILDABLE_DATABASES)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    pruned: list[str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dest",
        type=Path,
        help="backup folder to write into (default: TWITTER_BACKUP_DIR, else backups/ under the data folder)",
    )
    parser.add_argument(
        "--keep",
        type=positive_int,
        help="number of backups to keep, counting the new one (default: TWITTER_BACKUP_KEEP, 6)",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="backup", log_format=settings.log_format, level=settings.log_level)
    try:
        with stop_signals_raise():
            create_backup(
                settings=settings,
                destination=args.dest or settings.backup_folder(),
                keep=args.keep or settings.backup_keep,
            )
    except BackupError as error:
        return report_failure("backup", error)
    return 0


def utc_now() -> datetime:
    return datetime.now(UTC)


def project_version() -> str:
    try:
        return importlib.metadata.version("twitter-system")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_backup(
    *,
    settings: Settings,
    destination: Path,
    keep: int,
    now: Callable[[], datetime] = utc_now,
) -> BackupResult:
    """Write one new backup into ``destination``, then prune all but the newest ``keep``.

    Raises ``BackupError`` (or a subclass) on any failure. The destination then
    contains the same backups as before.
    """
    if keep < 1:
        raise BackupUsageError(f"the number of backups to keep must be at least 1, got {keep}")
    # Resolve every URL first, so a typo in the settings fails before anything is written.
    targets = {owner: database_target(settings.database_url(owner)) for owner in BACKED_UP_DATABASES}

    with backup_folder_lock(destination):
        started = time.monotonic()
        try:
            removed = remove_leftovers(destination)
        except OSError as error:
            raise BackupError(f"cannot delete leftovers of an interrupted run in {destination}: {error}") from error
        if removed:
            log.info("backup.leftovers_removed", folders=removed)

        created_at = now()
        name = new_backup_name(created_at)
        log.info("backup.started", destination=str(destination), backup=name)
        manifest = _write_backup(destination=destination, name=name, created_at=created_at, targets=targets)

        # Pruning waits for a good backup, so a run of failures never eats the last good ones.
        try:
            pruned = prune_backups(destination, keep=keep)
        except OSError as error:
            raise BackupError(
                f"backup {name} is complete, but pruning old backups in {destination} failed: {error}"
            ) from error

    total_bytes = sum(entry.size for entry in manifest.files)
    log.info(
        "backup.finished",
        backup=name,
        path=str(destination / name),
        size_bytes=total_bytes,
        duration_seconds=round(time.monotonic() - started, 3),
        pruned=pruned,
    )
    return BackupResult(path=destination / name, manifest=manifest, pruned=pruned)


def _write_backup(
    *,
    destination: Path,
    name: str,
    created_at: datetime,
    targets: dict[ServiceName, DatabaseTarget],
) -> Manifest:
    partial = destination / f"{PARTIAL_PREFIX}{name}"
    try:
        partial.mkdir()
        entries = [_dump_one(owner, target, folder=partial) for owner, target in targets.items()]
        manifest = Manifest(
            name=name,
            created_at=created_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            project_version=project_version(),
            files=tuple(entries),
        )
        write_manifest(partial, manifest)
        fsync_path(partial)
        os.rename(partial, destination / name)
        fsync_path(destination)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupError(f"writing backup {name} into {destination} failed: {error}") from error
    except BaseException:
        # Policy: whatever stops the run (a failed dump, Ctrl-C, a stop signal),
        # no partial folder stays behind.
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _dump_one(owner: ServiceName, target: DatabaseTarget, *, folder: Path) -> ManifestEntry:
    started = time.monotonic()
    path = folder / dump_file_name(owner.value, target.engine)
    dump_database(target, database=owner.value, destination=path)
    try:
        size = path.stat().st_size
        checksum = file_sha256(path)
    except OSError as error:
        raise DumpError(f"cannot read back the {owner} dump {path}: {error}") from error

    log.info(
        "backup.database_dumped",
        database=owner.value,
        engine=target.engine,
        file=path.name,
        size_bytes=size,
        duration_seconds=round(time.monotonic() - started, 3),
    )
    return ManifestEntry(database=owner.value, engine=target.engine, file=path.name, size=size, sha256=checksum)
