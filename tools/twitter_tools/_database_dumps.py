"""Dump, check and restore one database, PostgreSQL or SQLite.

PostgreSQL goes through the client programs (``pg_dump --format=custom``,
``pg_restore``) because they take a consistent snapshot without stopping the
services and their archives restore into a fresh or a populated database alike.
SQLite goes through Python's online backup API, which copies a consistent
snapshot while the services keep writing.

The connection details come from the SQLAlchemy URLs in the settings. The
PostgreSQL password travels to the client programs in ``PGPASSWORD`` only: it is
never part of a command line (visible to every user in ``ps``), a log event or an
error message.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from twitter_tools._backup_errors import (
    BackupError,
    BackupUsageError,
    BackupVerificationError,
    DumpError,
    RestoreError,
)

log = structlog.get_logger(__name__)

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
DUMP_FILE_SUFFIXES = {POSTGRESQL: ".pgdump", SQLITE: ".sqlite3"}

# Debian and the official images install versioned client programs here; /usr/bin
# has them too, through a wrapper, when the postgresql-client package is installed.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"

# libpq waits for an unreachable host as long as the kernel retries TCP (minutes),
# and a scheduled backup should fail sooner. A PGCONNECT_TIMEOUT in the environment
# takes precedence.
CONNECT_TIMEOUT_SECONDS = "30"

# asyncpg spells the TLS mode ``ssl``, libpq and psycopg spell it ``sslmode``.
TLS_MODE_PARAMETERS = ("sslmode", "ssl")
TLS_MODE_ALIASES = {"true": "require", "false": "disable"}

# How long an interrupted client program gets to cancel its query before SIGKILL.
TERMINATE_GRACE_SECONDS = 5

# Maximum length of a client program's stderr quoted in an error message.
MAX_ERROR_OUTPUT_CHARS = 400

# A table line of ``pg_restore --list``: "215; 1259 16385 TABLE public accounts owner".
TOC_TABLE_LINE = re.compile(r"^\d+; \d+ \d+ TABLE ", re.MULTILINE)


@dataclass(frozen=True)
class PostgresTarget:
    """Connection details of one PostgreSQL database, in libpq terms."""

    database: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_mode: str | None = None

    engine = POSTGRESQL

    def connection_arguments(self) -> list[str]:
        """Return the libpq options for a client program's command line, without the password."""
        arguments = ["--no-password", f"--dbname={self.database}"]
        if self.host:
            arguments.append(f"--host={self.host}")
        if self.port:
            arguments.append(f"--port={self.port}")
        if self.user:
            arguments.append(f"--username={self.user}")
        return arguments

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """Return ``base`` plus the libpq variables carrying the password and TLS mode."""
        environment = dict(base)
        environment.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS)
        if self.password is not None:
            environment["PGPASSWORD"] = self.password
        if self.tls_mode:
            environment["PGSSLMODE"] = self.tls_mode
        return environment

    def describe(self) -> str:
        return f"{self.database} on {self.host or 'the local socket'}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class SqliteTarget:
    """One SQLite database file."""

    path: Path

    engine = SQLITE

    def describe(self) -> str:
        return str(self.path)


DatabaseTarget = PostgresTarget | SqliteTarget


def database_target(url: str) -> DatabaseTarget:
    """Turn a SQLAlchemy database URL from the settings into what the dump programs need.

    Raises ``BackupUsageError`` for a URL that is invalid or names an engine other
    than PostgreSQL or SQLite.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        # The URL may contain a password, so the message never repeats it.
        raise BackupUsageError("invalid database URL in the settings: expected dialect+driver://...") from error

    if parsed.get_backend_name() == "postgresql":
        return _postgres_target(parsed)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise BackupUsageError("an in-memory SQLite database cannot be backed up or restored: set a file path")
        return SqliteTarget(path=Path(parsed.database))
    raise BackupUsageError(
        f"unsupported database engine {parsed.get_backend_name()!r}: backups support postgresql and sqlite"
    )


def _postgres_target(parsed: URL) -> PostgresTarget:
    if not parsed.database:
        raise BackupUsageError(f"the PostgreSQL URL for host {parsed.host} names no database")

    query = dict(parsed.query)
    # A Unix-socket folder arrives as ?host=/run/postgresql when the URL has no host part.
    host = parsed.host or _single_value(query.pop("host", None))
    tls_mode = None
    for name in TLS_MODE_PARAMETERS:
        value = _single_value(query.pop(name, None))
        if value is not None and tls_mode is None:
            tls_mode = TLS_MODE_ALIASES.get(value.lower(), value)
    if query:
        log.warning("backup.url_parameters_ignored", parameters=sorted(query), reason="pg_dump has no such option")

    return PostgresTarget(
        database=parsed.database,
        host=host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password if isinstance(parsed.password, str) else None,
        tls_mode=tls_mode,
    )


def _single_value(value: str | tuple[str, ...] | None) -> str | None:
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def dump_file_name(database: str, engine: str) -> str:
    return f"{database}{DUMP_FILE_SUFFIXES[engine]}"


# -- dumping ---------------------------------------------------------------------------


def dump_database(target: DatabaseTarget, *, database: str, destination: Path) -> None:
    """Write a dump of ``target`` to ``destination``, then check that it is complete.

    Raises ``DumpError`` when the dump program fails, or when the dump is empty,
    unreadable or contains no table (the URL probably names the wrong database).
    """
    if isinstance(target, PostgresTarget):
        _pg_dump(target, database=database, destination=destination)
    else:
        _sqlite_dump(target, database=database, destination=destination)

    if destination.stat().st_size == 0:
        raise DumpError(f"the dump of the {database} database is empty")
    try:
        check_dump(target.engine, database=database, dump=destination)
    except BackupVerificationError as error:
        raise DumpError(str(error)) from error


def _pg_dump(target: PostgresTarget, *, database: str, destination: Path) -> None:
    _run_client_program(
        "pg_dump",
        ["--format=custom", f"--file={destination}", *target.connection_arguments()],
        target=target,
        failure=lambda output: DumpError(f"pg_dump of the {database} database failed {output}"),
    )


def _sqlite_dump(target: SqliteTarget, *, database: str, destination: Path) -> None:
    if not target.path.is_file():
        raise DumpError(f"the {database} database file {target.path} does not exist: has it been migrated?")
    try:
        # mode=ro: a wrong path must fail here instead of creating an empty database.
        with closing(_connect_read_only(target.path)) as source, closing(sqlite3.connect(destination)) as copy:
            source.backup(copy)
    except sqlite3.Error as error:
        raise DumpError(f"online backup of the {database} database {target.path} failed: {error}") from error


# -- checking --------------------------------------------------------------------------


def check_dump(engine: str, *, database: str, dump: Path) -> None:
    """Check that ``dump`` is a readable archive containing at least one table.

    Raises ``BackupVerificationError`` otherwise.
    """
    if engine == POSTGRESQL:
        _check_pg_archive(database=database, dump=dump)
    elif engine == SQLITE:
        _check_sqlite_copy(database=database, dump=dump)
    else:
        raise BackupVerificationError(f"the {database} dump has unknown engine {engine!r}")


def _check_pg_archive(*, database: str, dump: Path) -> None:
    listing = _run_client_program(
        "pg_restore",
        ["--list", str(dump)],
        target=None,
        failure=lambda output: BackupVerificationError(
            f"the {database} dump {dump} is not a readable pg_dump archive {output}"
        ),
    )
    if not TOC_TABLE_LINE.search(listing):
        raise BackupVerificationError(
            f"the {database} dump {dump} contains no table: does the URL name the migrated {database} database?"
        )


def _check_sqlite_copy(*, database: str, dump: Path) -> None:
    try:
        with closing(_connect_read_only(dump)) as copy:
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            table_count = copy.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    except sqlite3.Error as error:
        raise BackupVerificationError(
            f"the {database} dump {dump} is not a readable SQLite database: {error}"
        ) from error
    if problems != ["ok"]:
        summary = "; ".join(problems)[:MAX_ERROR_OUTPUT_CHARS]
        raise BackupVerificationError(f"the {database} dump {dump} failed SQLite's integrity check: {summary}")
    if table_count == 0:
        raise BackupVerificationError(
            f"the {database} dump {dump} contains no table: has the {database} database been migrated?"
        )


# -- restoring -------------------------------------------------------------------------


def restore_database(target: DatabaseTarget, *, database: str, dump: Path) -> None:
    """Replace the contents of ``target`` with the checked dump ``dump``.

    Raises ``RestoreError`` on failure. Both engines restore in one transaction,
    so a failed restore leaves the database as it was.
    """
    if isinstance(target, PostgresTarget):
        # --clean --if-exists drops each dumped object before creating it, so a
        # populated database and a freshly created empty one both work. Objects
        # that exist only in the target (a newer migration's tables) stay.
        _run_client_program(
            "pg_restore",
            ["--clean", "--if-exists", "--no-owner", "--single-transaction", *target.connection_arguments(), str(dump)],
            target=target,
            failure=lambda output: RestoreError(
                f"pg_restore into the {database} database failed and changed nothing {output}"
            ),
        )
        return

    try:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(_connect_read_only(dump)) as source, closing(sqlite3.connect(target.path, timeout=30)) as live:
            source.backup(live)
    except (OSError, sqlite3.Error) as error:
        raise RestoreError(f"restoring the {database} database into {target.path} failed: {error}") from error


# -- helpers ---------------------------------------------------------------------------


def _connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def find_client_program(name: str) -> str:
    """Return the path of a PostgreSQL client program: from PATH, else the newest Debian install."""
    on_path = shutil.which(name)
    if on_path:
        return on_path
    installed = sorted(
        Path("/").glob(PG_BIN_GLOB.lstrip("/") + f"/{name}"),
        key=lambda path: _version_key(path.parent.parent.name),
    )
    if installed:
        return str(installed[-1])
    raise BackupUsageError(f"{name} not found: install the PostgreSQL client programs (Debian: postgresql-client)")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _run_client_program(
    name: str,
    arguments: list[str],
    *,
    target: PostgresTarget | None,
    failure: Callable[[str], BackupError],
) -> str:
    """Run a PostgreSQL client program and return its stdout.

    On failure, raise ``failure(detail)``, where ``detail`` starts with the exit
    status in brackets and carries the program's stderr on one line.
    """
    command = [find_client_program(name), *arguments]
    environment = target.environment(os.environ) if target is not None else dict(os.environ)
    try:
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as error:
        raise failure(f"(could not start {name}: {error})") from error

    with process:
        try:
            stdout, stderr = process.communicate()
        except BaseException:
            # Policy: an interrupted run (Ctrl-C, the scheduler's stop signal) sends
            # SIGTERM first, because pg_dump and pg_restore handle it by cancelling
            # their query on the server. After SIGKILL alone the server session would
            # keep running, waiting on locks and keeping its snapshot open.
            process.terminate()
            try:
                process.wait(timeout=TERMINATE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    if process.returncode != 0:
        raise failure(f"(exit status {process.returncode}): {_summarize(stderr)}")
    return stdout


def _summarize(output: str) -> str:
    """Squeeze a program's stderr into part of a one-line message."""
    one_line = " ".join(output.split())
    if len(one_line) > MAX_ERROR_OUTPUT_CHARS:
        one_line = one_line[:MAX_ERROR_OUTPUT_CHARS] + "..."
    return one_line or "no error output"
