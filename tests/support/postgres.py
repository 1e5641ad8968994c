"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, 127.0.0.1 only.

PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to the
``postgres`` system user and its commands run through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
PASSWORD = "test-password"
PORT_RANGE_START, PORT_RANGE_END = 20000, 32000
_handed_out: set[int] = set()  # never hand out a port twice in one test session


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    data_dir: Path
    options: str

    def stop(self) -> None:
        """Stop the server abruptly, as a crash or a lost machine would."""
        subprocess.run(
            _as_cluster_owner([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        subprocess.run(
            _as_cluster_owner([
                str(find_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-o", self.options,
                "-l", str(self.data_dir.parent / "log"), "-w", "start",
            ]),
            check=True,
            capture_output=True,
        )

    def url(self, database: str, *, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping an older one) and return its asyncpg URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str) -> None:
        subprocess.run(
            ["psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
            check=True,
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
        )


def find_pg_bin() -> Path:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(p) for p in PG_BIN_CANDIDATES]
    if on_path:
        candidates.insert(0, Path(on_path).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresUnavailable("no PostgreSQL server binaries found; install Debian's postgresql package")


def free_port() -> int:
    """Return a port nothing listens on, below Linux's ephemeral range (32768 and up).

    A port from bind(0) lies in the ephemeral range, where the tests' own outgoing
    connections take ports too and can grab it before the server binds.
    """
    while True:
        port = random.randrange(PORT_RANGE_START, PORT_RANGE_END)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def _as_cluster_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server on a free 127.0.0.1 port; stop it and delete its files after."""
    pg_bin = find_pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="twitter-pg-"))
    data_dir = folder / "data"
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    port = free_port()
    user = "twitter"
    try:
        subprocess.run(
            _as_cluster_owner([
                str(pg_bin / "initdb"), "-D", str(data_dir), "-U", user, "--auth=scram-sha-256",
                f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8",
            ]),
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off -c max_connections=200"
        server = PostgresServer(host="127.0.0.1", port=port, user=user, password=PASSWORD, data_dir=data_dir, options=options)
        server.start()
        yield server
    finally:
        if (data_dir / "postmaster.pid").exists():
            subprocess.run(
                _as_cluster_owner([str(pg_bin / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
