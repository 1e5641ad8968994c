"""``twitter-system migrate``: idempotent, safe when replicas run it at once, non-zero on failure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, free_port
from tests.support.system import logged_events
from twitter_shared.migrate import current_revision, head_revision
from twitter_shared.settings import DATABASE_OWNERS


def migrate(env: dict[str, str], *databases: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "twitter_tools.cli", "migrate", *databases],
        env={**os.environ, "TWITTER_LOG_FORMAT": "json", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_migrate_creates_every_embedded_database(tmp_path: Path) -> None:
    process = migrate({"TWITTER_DATA_DIR": str(tmp_path)})
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 0, output.decode()
    for owner in DATABASE_OWNERS:
        url = f"sqlite+aiosqlite:///{tmp_path / f'{owner}.db'}"
        assert asyncio.run(current_revision(url)) == head_revision(owner)


def test_concurrent_migrations_on_postgres_all_succeed(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("concurrent_migrate")
    env = {"TWITTER_ACCOUNT_DATABASE_URL": url}

    runs = [migrate(env, "account") for _ in range(4)]
    results = [run.communicate(timeout=120) for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0, 0], [out.decode() for out, _ in results]
    assert asyncio.run(current_revision(url)) == head_revision("account")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://nobody:wrong@127.0.0.1:{port}/missing",
        "sqlite+aiosqlite:////proc/not-writable/account.db",
    ],
)
def test_migrate_fails_clearly_on_an_unusable_database(url: str) -> None:
    process = migrate({"TWITTER_ACCOUNT_DATABASE_URL": url.format(port=free_port())}, "account")
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 1
    assert "migrate.failed" in logged_events(output)
    assert b"Traceback" not in output


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twitter_tools.cli", "--help"], capture_output=True, text=True, check=True, timeout=60
    )

    for command in ("run", "serve", "migrate", "backup", "restore", "backup-scheduler", "rebuild-timelines", "load", "check"):
        assert f"    {command}" in result.stdout


def test_unknown_database_name_is_rejected(tmp_path: Path) -> None:
    process = migrate({"TWITTER_DATA_DIR": str(tmp_path)}, "accounts")
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 2
    assert "migrate.unknown_database" in logged_events(output)
    assert not (tmp_path / "account.db").exists()
