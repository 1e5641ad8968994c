"""The backup folder: one sub-folder per backup, its manifest, the lock and retention.

Layout of the destination folder::

    backups/
      .lock                                  flock()ed by every backup and restore
      20261204T203000Z-1a2b3c4d/             one complete backup
        account.pgdump   post.pgdump         (or account.sqlite3, post.sqlite3)
        manifest.json
      .partial-20261205T000000Z-5e6f7a8b/    a backup being written

A backup is written under a ``.partial-`` name and renamed into place only once
every dump is checked and the manifest is on disk, so a folder with a backup
name is always complete. Folders being pruned are first renamed to a
``.pruning-`` name for the same reason. Leftovers of either kind are deleted by
the next run that holds the lock.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from twitter_tools._backup_errors import BackupError, BackupInProgressError, BackupUsageError, BackupVerificationError

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
PARTIAL_PREFIX = ".partial-"
PRUNING_PREFIX = ".pruning-"
MANIFEST_FORMAT = 1
BACKUP_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{8}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Dump files sit directly in the backup folder; a manifest naming anything else
# ("../x", "/etc/passwd") has been tampered with.
PLAIN_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
CHECKSUM_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ManifestEntry:
    """One dump file in a backup."""

    database: str
    engine: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The contents of ``manifest.json``: the files of a backup and how to check them."""

    name: str
    created_at: str
    project_version: str
    files: tuple[ManifestEntry, ...]
    format: int = MANIFEST_FORMAT

    def to_json(self) -> str:
        document = asdict(self)
        document["files"] = [asdict(entry) for entry in self.files]
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: Path) -> Manifest:
        """Parse a manifest; raise ``BackupVerificationError`` for anything malformed."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise BackupVerificationError(f"manifest {source} is not valid JSON: {error}") from error
        if not isinstance(document, dict):
            raise BackupVerificationError(f"manifest {source} is not a JSON object")
        if document.get("format") != MANIFEST_FORMAT:
            raise BackupVerificationError(
                f"manifest {source} has format {document.get('format')!r}; this version reads format {MANIFEST_FORMAT}"
            )
        raw_files = document.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            raise BackupVerificationError(f"manifest {source} lists no files")
        return cls(
            name=_field(document, "name", str, source),
            created_at=_field(document, "created_at", str, source),
            project_version=_field(document, "project_version", str, source),
            files=tuple(_entry(raw, source) for raw in raw_files),
        )


def _field(document: dict[str, Any], key: str, kind: type, source: Path) -> Any:
    value = document.get(key)
    # bool is an int subclass, and a size of true is as wrong as a missing one.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BackupVerificationError(f"manifest {source} has an invalid or missing {key!r}")
    return value


def _entry(raw: object, source: Path) -> ManifestEntry:
    if not isinstance(raw, dict):
        raise BackupVerificationError(f"manifest {source} has a file entry that is not an object")
    entry = ManifestEntry(
        database=_field(raw, "database", str, source),
        engine=_field(raw, "engine", str, source),
        file=_field(raw, "file", str, source),
        size=_field(raw, "size", int, source),
        sha256=_field(raw, "sha256", str, source),
    )
    if not PLAIN_FILE_NAME.match(entry.file) or entry.file == MANIFEST_NAME:
        raise BackupVerificationError(f"manifest {source} names an invalid file {entry.file!r}")
    if not SHA256_HEX.match(entry.sha256):
        raise BackupVerificationError(f"manifest {source} has an invalid SHA-256 for {entry.file}")
    if entry.size <= 0:
        raise BackupVerificationError(f"manifest {source} gives {entry.file} an invalid size {entry.size}")
    return entry


def new_backup_name(now: datetime) -> str:
    """Return a fresh backup folder name: the UTC time to the second and a random suffix."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHECKSUM_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def backup_folder_lock(folder: Path, *, required: bool = True) -> Iterator[None]:
    """Hold the exclusive lock of the backup folder ``folder``, or fail at once.

    Raises ``BackupInProgressError`` when another process holds it. With
    ``required=False`` a folder where no lock file can be created (read-only
    cold storage mounted for a restore) is used without the lock.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        if not required and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            yield
            return
        raise BackupError(f"cannot create the lock file in backup folder {folder}: {error.strerror}") from error

    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise BackupInProgressError(
                f"another backup or restore is running on {folder}; try again when it has finished"
            ) from error
        yield
    finally:
        # Closing the descriptor releases the lock. The lock file stays: deleting
        # it would let a third process lock a new file while the second holds the old.
        os.close(descriptor)


def remove_leftovers(folder: Path) -> list[str]:
    """Delete ``.partial-`` and ``.pruning-`` folders of interrupted runs; call only under the lock."""
    removed = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.startswith((PARTIAL_PREFIX, PRUNING_PREFIX)):
            shutil.rmtree(child)
            removed.append(child.name)
    return removed


def list_backups(folder: Path) -> list[Path]:
    """Return the complete backups in ``folder``, newest first."""
    if not folder.is_dir():
        return []
    backups = [child for child in folder.iterdir() if child.is_dir() and BACKUP_NAME.match(child.name)]
    return sorted(backups, key=_age_key, reverse=True)


def _age_key(backup: Path) -> tuple[str, str]:
    # The name has whole seconds, so the manifest's microseconds order two
    # backups taken within one second.
    stamp = BACKUP_NAME.match(backup.name).group("stamp")  # type: ignore[union-attr]
    try:
        created_at = json.loads((backup / MANIFEST_NAME).read_text()).get("created_at", "")
    except (OSError, ValueError, AttributeError):
        created_at = ""
    return stamp, created_at if isinstance(created_at, str) else ""


def prune_backups(folder: Path, *, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` backups; return the names deleted."""
    pruned = []
    for backup in list_backups(folder)[keep:]:
        doomed = backup.with_name(PRUNING_PREFIX + backup.name)
        os.rename(backup, doomed)
        shutil.rmtree(doomed)
        pruned.append(backup.name)
    return pruned


def write_manifest(folder: Path, manifest: Manifest) -> None:
    path = folder / MANIFEST_NAME
    with path.open("w", encoding="utf-8") as stream:
        stream.write(manifest.to_json())
        stream.flush()
        os.fsync(stream.fileno())


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk, so a rename survives a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_manifest(backup: Path) -> Manifest:
    path = backup / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise BackupVerificationError(f"backup {backup} has no {MANIFEST_NAME}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise BackupVerificationError(f"cannot read manifest {path}: {error}") from error
    return Manifest.from_json(text, source=path)


def verify_backup(backup: Path, *, expected_databases: tuple[str, ...]) -> Manifest:
    """Check every file of ``backup`` against its manifest; return the manifest.

    Raises ``BackupVerificationError`` on a missing, malformed or tampered
    manifest, a manifest that does not list each of ``expected_databases``
    exactly once, or a missing, truncated or corrupted file. Reads only.
    """
    manifest = read_manifest(backup)

    listed = sorted(entry.database for entry in manifest.files)
    if listed != sorted(expected_databases):
        raise BackupVerificationError(
            f"manifest of {backup} lists databases {listed}, expected {sorted(expected_databases)}"
        )

    for entry in manifest.files:
        path = backup / entry.file
        try:
            size = path.stat().st_size
        except FileNotFoundError as error:
            raise BackupVerificationError(f"backup {backup} is missing {entry.file}") from error
        except OSError as error:
            raise BackupVerificationError(f"cannot read {path}: {error.strerror}") from error
        if size != entry.size:
            raise BackupVerificationError(
                f"{path} has {size} bytes, the manifest says {entry.size}: the file is truncated or was changed"
            )
        try:
            checksum = file_sha256(path)
        except OSError as error:
            raise BackupVerificationError(f"cannot read {path}: {error.strerror}") from error
        if checksum != entry.sha256:
            raise BackupVerificationError(f"{path} does not match the SHA-256 in the manifest: the file is corrupted")
    return manifest


def resolve_backup(reference: str, *, folder: Path) -> Path:
    """Find a backup by folder name (inside ``folder``) or by path.

    Raises ``BackupUsageError`` when there is no such folder.
    """
    as_path = Path(reference)
    candidate = as_path if as_path.is_absolute() or len(as_path.parts) > 1 else folder / reference
    if not candidate.is_dir():
        raise BackupUsageError(f"backup {reference!r} not found (looked for folder {candidate})")
    return candidate


def latest_backup(folder: Path) -> Path:
    backups = list_backups(folder)
    if not backups:
        raise BackupUsageError(f"no backups in {folder}")
    return backups[0]
