"""``backup`` and ``restore`` against a real PostgreSQL server, with pg_dump and pg_restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, free_port
from tests.tools.test_backup import backup_names, hidden_folders, logging_setups, run_cli  # noqa: F401 - autouse fixture
from twitter_tools._backup_files import MANIFEST_NAME

pytestmark = pytest.mark.postgres

ACCOUNT_ROWS = "1|alice\n2|bob"
POST_ROWS = "10|1|hello world\n11|2|second post"


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL server; each test makes databases with names of its own."""
    return postgres_server


def query(server: PostgresServer, database: str, sql: str) -> str:
    """Run ``sql`` in ``database``; return the rows as psql's unaligned text."""
    completed = subprocess.run(
        ["psql", "-h", server.host, "-p", str(server.port), "-U", server.user, "-d", database,
         "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        env={**os.environ, "PGPASSWORD": server.password},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def populate(server: PostgresServer, account_db: str, post_db: str) -> None:
    query(server, account_db, """
        CREATE TABLE accounts (id bigint PRIMARY KEY, username text NOT NULL UNIQUE);
        CREATE INDEX accounts_username_lower ON accounts (lower(username));
        INSERT INTO accounts VALUES (1, 'alice'), (2, 'bob');
    """)
    query(server, post_db, """
        CREATE SEQUENCE post_events_seq;
        CREATE TABLE posts (id bigint PRIMARY KEY, account_id bigint NOT NULL, body text NOT NULL);
        INSERT INTO posts VALUES (10, 1, 'hello world'), (11, 2, 'second post');
        SELECT nextval('post_events_seq'), nextval('post_events_seq');
    """)


def account_rows(server: PostgresServer, database: str) -> str:
    return query(server, database, "SELECT id, username FROM accounts ORDER BY id")


def post_rows(server: PostgresServer, database: str) -> str:
    return query(server, database, "SELECT id, account_id, body FROM posts ORDER BY id")


@pytest.fixture
def pg_databases(
    postgres: PostgresServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[str, str]:
    """Fresh populated account and post databases, configured through TWITTER_ variables."""
    for name in list(os.environ):
        if name.startswith("TWITTER_"):
            monkeypatch.delenv(name)
    suffix = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:40]
    account_db, post_db = f"account_{suffix}", f"post_{suffix}"
    monkeypatch.setenv("TWITTER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TWITTER_ACCOUNT_DATABASE_URL", postgres.create_database(account_db))
    monkeypatch.setenv("TWITTER_POST_DATABASE_URL", postgres.create_database(post_db))
    populate(postgres, account_db, post_db)
    return account_db, post_db


def change_live_data(server: PostgresServer, account_db: str, post_db: str) -> None:
    query(server, account_db, "DELETE FROM accounts WHERE id = 1; INSERT INTO accounts VALUES (3, 'mallory')")
    query(server, post_db, "UPDATE posts SET body = 'edited after the backup'; DROP SEQUENCE post_events_seq")


def test_pg_backup_writes_checked_archives(
    postgres: PostgresServer, pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "backups"

    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)

    assert code == 0, err
    (name,) = backup_names(destination)
    manifest = json.loads((destination / name / MANIFEST_NAME).read_text())
    assert [(entry["database"], entry["engine"], entry["file"]) for entry in manifest["files"]] == [
        ("account", "postgresql", "account.pgdump"),
        ("post", "postgresql", "post.pgdump"),
    ]
    for entry in manifest["files"]:
        assert entry["size"] == (destination / name / entry["file"]).stat().st_size
    listing = subprocess.run(
        ["pg_restore", "--list", str(destination / name / "post.pgdump")], capture_output=True, text=True, check=True
    ).stdout
    assert " TABLE public posts " in listing
    assert " TABLE DATA public posts " in listing
    assert hidden_folders(destination) == []


def test_pg_round_trip_restores_into_database_with_data(
    postgres: PostgresServer, pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_db, post_db = pg_databases
    destination = tmp_path / "backups"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    change_live_data(postgres, account_db, post_db)

    code, out, err = run_cli(["restore", "--dest", str(destination), "--latest"], capsys)

    assert code == 0, err
    assert account_rows(postgres, account_db) == "1|alice\n2|bob"
    assert post_rows(postgres, post_db) == "10|1|hello world\n11|2|second post"
    assert query(postgres, post_db, "SELECT last_value FROM post_events_seq") == "2"
    assert "twitter-system rebuild-timelines" in out


def test_pg_restore_into_freshly_created_database(
    postgres: PostgresServer, pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_db, post_db = pg_databases
    destination = tmp_path / "backups"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    postgres.create_database(account_db)
    postgres.create_database(post_db)

    code, _, err = run_cli(["restore", "--dest", str(destination), "--latest"], capsys)

    assert code == 0, err
    assert account_rows(postgres, account_db) == ACCOUNT_ROWS
    assert post_rows(postgres, post_db) == POST_ROWS
    assert query(postgres, account_db, "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts' ORDER BY 1") == (
        "accounts_pkey\naccounts_username_key\naccounts_username_lower"
    )


def test_pg_wrong_password_fails_and_prunes_nothing(
    postgres: PostgresServer,
    pg_databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    destination = tmp_path / "backups"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    kept = backup_names(destination)
    wrong_password = "wrong-password-do-not-log"
    monkeypatch.setenv(
        "TWITTER_POST_DATABASE_URL",
        postgres.url(pg_databases[1]).replace(f":{postgres.password}@", f":{wrong_password}@"),
    )

    code, out, err = run_cli(["backup", "--dest", str(destination), "--keep", "1"], capsys)

    assert code == 1
    assert err.count("\n") == 1
    assert "pg_dump of the post database failed" in err
    assert "password authentication failed" in err
    assert wrong_password not in err + out
    assert postgres.password not in err + out
    assert backup_names(destination) == kept
    assert hidden_folders(destination) == []


def test_pg_unreachable_database_fails_without_partial_folder(
    postgres: PostgresServer,
    pg_databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    destination = tmp_path / "backups"
    monkeypatch.setenv(
        "TWITTER_ACCOUNT_DATABASE_URL", f"postgresql+asyncpg://twitter:pw@127.0.0.1:{free_port()}/account"
    )

    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)

    assert code == 1
    assert "pg_dump of the account database failed" in err
    assert "Connection refused" in err
    assert backup_names(destination) == []
    assert hidden_folders(destination) == []


def test_pg_database_without_tables_is_not_a_good_backup(
    postgres: PostgresServer, pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres.create_database(pg_databases[0])
    destination = tmp_path / "backups"

    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)

    assert code == 1
    assert "account dump" in err
    assert "contains no table" in err
    assert backup_names(destination) == []
    assert hidden_folders(destination) == []


def test_pg_restore_refuses_corrupted_dump_and_changes_nothing(
    postgres: PostgresServer, pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_db, post_db = pg_databases
    destination = tmp_path / "backups"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    (name,) = backup_names(destination)
    dump = destination / name / "account.pgdump"
    data = bytearray(dump.read_bytes())
    data[-10] ^= 0xFF
    dump.write_bytes(bytes(data))
    change_live_data(postgres, account_db, post_db)

    code, _, err = run_cli(["restore", "--dest", str(destination), name], capsys)

    assert code == 4
    assert "does not match the SHA-256" in err
    assert account_rows(postgres, account_db) == "2|bob\n3|mallory"
    assert post_rows(postgres, post_db) == "10|1|edited after the backup\n11|2|edited after the backup"


def test_pg_failed_restore_names_databases_already_restored(
    postgres: PostgresServer,
    pg_databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_db, post_db = pg_databases
    destination = tmp_path / "backups"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    change_live_data(postgres, account_db, post_db)
    monkeypatch.setenv("TWITTER_POST_DATABASE_URL", postgres.url("no_such_database"))

    code, _, err = run_cli(["restore", "--dest", str(destination), "--latest"], capsys)

    assert code == 1
    assert "pg_restore into the post database failed and changed nothing" in err
    assert "already restored from this backup: account" in err
    assert account_rows(postgres, account_db) == ACCOUNT_ROWS
    assert post_rows(postgres, post_db) == "10|1|edited after the backup\n11|2|edited after the backup"


# -- runs that block in pg_dump --------------------------------------------------------


TWITTER_SYSTEM = Path(sys.executable).parent / "twitter-system"
# Upper bound for a real process, only to fail instead of hanging.
PROCESS_DEADLINE_SECONDS = 60


@pytest.fixture
def posts_table_locked(postgres: PostgresServer, pg_databases: tuple[str, str]) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on the posts table, so pg_dump of the post database waits."""
    _, post_db = pg_databases
    holder = subprocess.Popen(
        ["psql", "-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user, "-d", post_db, "-qAt"],
        env={**os.environ, "PGPASSWORD": postgres.password},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert holder.stdin is not None
    holder.stdin.write("BEGIN;\nLOCK TABLE posts IN ACCESS EXCLUSIVE MODE;\n")
    holder.stdin.flush()
    wait_until(
        lambda: query(postgres, post_db, "SELECT count(*) FROM pg_locks WHERE relation = 'posts'::regclass") == "1",
        what="the lock on posts",
    )
    yield
    holder.stdin.close()
    holder.wait(timeout=PROCESS_DEADLINE_SECONDS)


def wait_until(condition: Callable[[], bool], *, what: str) -> None:
    deadline = time.monotonic() + PROCESS_DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {PROCESS_DEADLINE_SECONDS} s waiting for {what}")
        time.sleep(0.1)


def pg_dump_waiting(server: PostgresServer) -> bool:
    return query(
        server,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'",
    ) == "1"


def start_command(arguments: list[str], log_file: Path) -> subprocess.Popen:
    with log_file.open("w") as stream:
        return subprocess.Popen(
            [str(TWITTER_SYSTEM), *arguments],
            env=dict(os.environ),
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def test_pg_second_backup_refused_while_first_runs(
    postgres: PostgresServer, posts_table_locked: None, tmp_path: Path
) -> None:
    destination = tmp_path / "backups"
    first = start_command(["backup", "--dest", str(destination)], tmp_path / "first.log")
    try:
        wait_until(lambda: pg_dump_waiting(postgres), what="the first backup to wait in pg_dump")

        second = subprocess.run(
            [str(TWITTER_SYSTEM), "backup", "--dest", str(destination)],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=PROCESS_DEADLINE_SECONDS,
        )

        assert second.returncode == 3
        assert "another backup or restore is running" in second.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        first_code = first.wait(timeout=PROCESS_DEADLINE_SECONDS)

    assert first_code == 128 + signal.SIGTERM
    assert "twitter-system backup: error: stopped by SIGTERM" in (tmp_path / "first.log").read_text()
    assert backup_names(destination) == []
    assert hidden_folders(destination) == []
    wait_until(lambda: not pg_dump_waiting(postgres), what="pg_dump to be stopped with the backup")


def test_pg_stop_signal_interrupts_scheduled_backup_and_removes_partial_folder(
    postgres: PostgresServer, posts_table_locked: None, tmp_path: Path
) -> None:
    destination = tmp_path / "backups"
    scheduler = start_command(
        ["backup-scheduler", "--schedule", "* * * * * *", "--dest", str(destination)], tmp_path / "scheduler.log"
    )
    try:
        wait_until(lambda: pg_dump_waiting(postgres), what="the scheduled backup to wait in pg_dump")
        assert hidden_folders(destination) != []

        scheduler.send_signal(signal.SIGTERM)
        code = scheduler.wait(timeout=PROCESS_DEADLINE_SECONDS)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()

    log_text = (tmp_path / "scheduler.log").read_text()
    assert code == 0, log_text
    assert "backup_scheduler.backup_interrupted" in log_text
    assert hidden_folders(destination) == []
    assert backup_names(destination) == []
    wait_until(lambda: not pg_dump_waiting(postgres), what="pg_dump to be stopped with the scheduler")
