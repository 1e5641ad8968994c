"""``twitter-system backup`` in embedded mode (SQLite): manifest, retention, lock, failures.

The helpers and fixtures at the top are shared with the restore and scheduler
tests, which import them from here. The real migrations are written elsewhere,
so the tests make small tables of their own.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from twitter_shared.settings import ServiceName
from twitter_tools import backup as backup_command
from twitter_tools import cli
from twitter_tools import restore as restore_command
from twitter_tools import scheduler as scheduler_command
from twitter_tools._backup_errors import BackupUsageError
from twitter_tools._backup_files import BACKUP_NAME, LOCK_NAME, MANIFEST_NAME, backup_folder_lock, list_backups
from twitter_tools._database_dumps import PostgresTarget, SqliteTarget, database_target

ACCOUNT_ROWS = [(1, "alice"), (2, "bob")]
POST_ROWS = [(10, 1, "hello world"), (11, 2, "second post")]


# -- shared helpers --------------------------------------------------------------------


def create_sqlite_databases(data_dir: Path) -> None:
    """Create account.db and post.db under ``data_dir`` with a table and rows each."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(data_dir / "account.db")) as account:
        account.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, username TEXT NOT NULL)")
        account.executemany("INSERT INTO accounts VALUES (?, ?)", ACCOUNT_ROWS)
        account.commit()
    with closing(sqlite3.connect(data_dir / "post.db")) as post:
        post.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, account_id INTEGER, body TEXT)")
        post.executemany("INSERT INTO posts VALUES (?, ?, ?)", POST_ROWS)
        post.commit()


def sqlite_rows(path: Path, table: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 - test table names


def backup_names(folder: Path) -> list[str]:
    """Return the names of complete backups in ``folder``, newest first."""
    return [backup.name for backup in list_backups(folder)]


def hidden_folders(folder: Path) -> list[str]:
    return sorted(child.name for child in folder.iterdir() if child.is_dir() and child.name.startswith("."))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def logging_setups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the commands' logging set-up instead of running it in the test process.

    configure_logging caches loggers on first use and binds them to the stdout of
    the moment, which would break capture_logs and write into a closed capture
    stream in later tests. The subprocess tests run the real set-up.
    """
    services: list[str] = []

    def record(*, service: str, log_format: object, level: str) -> None:
        services.append(service)

    for module in (backup_command, restore_command, scheduler_command):
        monkeypatch.setattr(module, "configure_logging", record)
    return services


@pytest.fixture
def twitter_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Clear every TWITTER_ variable and point the data folder at a fresh temporary one."""
    for name in list(os.environ):
        if name.startswith("TWITTER_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    monkeypatch.setenv("TWITTER_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def embedded_data(twitter_environment: Path) -> Iterator[Path]:
    """An embedded-mode data folder with populated account and post databases."""
    create_sqlite_databases(twitter_environment)
    yield twitter_environment


# -- the manifest and the dumps --------------------------------------------------------


def test_backup_writes_manifest_matching_files(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    backups_dir = embedded_data / "backups"
    names = backup_names(backups_dir)
    assert len(names) == 1
    assert BACKUP_NAME.match(names[0])
    backup = backups_dir / names[0]
    manifest = json.loads((backup / MANIFEST_NAME).read_text())
    assert manifest["name"] == names[0]
    assert manifest["format"] == 1
    assert manifest["project_version"] == importlib.metadata.version("twitter-system")
    assert manifest["created_at"].endswith("Z")
    assert [entry["database"] for entry in manifest["files"]] == ["account", "post"]
    for entry in manifest["files"]:
        dump = backup / entry["file"]
        assert entry["engine"] == "sqlite"
        assert entry["size"] == dump.stat().st_size
        assert entry["size"] > 0
        assert entry["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert sorted(path.name for path in backup.iterdir()) == ["account.sqlite3", MANIFEST_NAME, "post.sqlite3"]
    assert hidden_folders(backups_dir) == []


def test_backup_configures_logging_as_backup(
    embedded_data: Path, logging_setups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    assert logging_setups == ["backup"]


def test_backup_skips_timeline_database(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with closing(sqlite3.connect(embedded_data / "timeline.db")) as timeline:
        timeline.execute("CREATE TABLE home (id INTEGER PRIMARY KEY)")

    code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    backup = embedded_data / "backups" / backup_names(embedded_data / "backups")[0]
    assert not any("timeline" in path.name for path in backup.iterdir())


def test_backup_copies_contain_rows(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    backup = embedded_data / "backups" / backup_names(embedded_data / "backups")[0]
    assert sqlite_rows(backup / "account.sqlite3", "accounts") == ACCOUNT_ROWS
    assert sqlite_rows(backup / "post.sqlite3", "posts") == POST_ROWS


def test_backup_copies_wal_database_with_uncheckpointed_rows(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A running service keeps its connection open in WAL mode, so rows it has
    # committed may be only in the -wal file. The backup must contain them.
    with closing(sqlite3.connect(embedded_data / "post.db")) as live:
        live.execute("PRAGMA journal_mode=WAL")
        live.execute("PRAGMA wal_autocheckpoint=0")
        live.execute("INSERT INTO posts VALUES (12, 1, 'only in the WAL')")
        live.commit()

        code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    backup = embedded_data / "backups" / backup_names(embedded_data / "backups")[0]
    assert sqlite_rows(backup / "post.sqlite3", "posts") == [*POST_ROWS, (12, 1, "only in the WAL")]


def test_backup_logs_each_database_with_size_and_duration(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with capture_logs() as logs:
        code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    dumped = [event for event in logs if event["event"] == "backup.database_dumped"]
    assert [event["database"] for event in dumped] == ["account", "post"]
    for event in dumped:
        assert event["size_bytes"] > 0
        assert event["duration_seconds"] >= 0
        assert event["engine"] == "sqlite"
    finished = [event for event in logs if event["event"] == "backup.finished"]
    assert len(finished) == 1
    assert finished[0]["pruned"] == []


def test_backup_dest_option_overrides_setting(
    embedded_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWITTER_BACKUP_DIR", str(tmp_path / "from-settings"))
    destination = tmp_path / "cold" / "storage"

    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)

    assert code == 0, err
    assert len(backup_names(destination)) == 1
    assert not (tmp_path / "from-settings").exists()


# -- retention -------------------------------------------------------------------------


def test_retention_keeps_newest_n(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backups_dir = embedded_data / "backups"
    created: list[str] = []
    for _ in range(4):
        before = set(backup_names(backups_dir))
        code, _, err = run_cli(["backup", "--keep", "2"], capsys)
        assert code == 0, err
        (new_name,) = set(backup_names(backups_dir)) - before
        created.append(new_name)

    assert backup_names(backups_dir) == [created[3], created[2]]


def test_retention_reads_keep_from_settings(
    embedded_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWITTER_BACKUP_KEEP", "1")
    for _ in range(3):
        code, _, err = run_cli(["backup"], capsys)
        assert code == 0, err

    assert len(backup_names(embedded_data / "backups")) == 1


def test_retention_ignores_foreign_folders(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backups_dir = embedded_data / "backups"
    (backups_dir / "keep-me").mkdir(parents=True)
    (backups_dir / "notes.txt").write_text("operator notes")

    for _ in range(2):
        code, _, err = run_cli(["backup", "--keep", "1"], capsys)
        assert code == 0, err

    assert (backups_dir / "keep-me").is_dir()
    assert (backups_dir / "notes.txt").read_text() == "operator notes"


def test_keep_below_one_is_rejected(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["backup", "--keep", "0"])

    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


# -- the lock --------------------------------------------------------------------------


def test_second_run_is_refused_while_first_holds_lock(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups_dir = embedded_data / "backups"

    with backup_folder_lock(backups_dir):
        code, out, err = run_cli(["backup"], capsys)

    assert code == 3
    assert err.count("\n") == 1
    assert "another backup or restore is running" in err
    assert backup_names(backups_dir) == []
    assert hidden_folders(backups_dir) == []
    assert (backups_dir / LOCK_NAME).exists()


def test_lock_is_released_after_run(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["backup"], capsys)
    assert code == 0, err

    with backup_folder_lock(embedded_data / "backups"):
        pass


# -- failures --------------------------------------------------------------------------


def test_missing_database_fails_and_prunes_nothing(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups_dir = embedded_data / "backups"
    for _ in range(2):
        code, _, err = run_cli(["backup", "--keep", "2"], capsys)
        assert code == 0, err
    kept = backup_names(backups_dir)
    (embedded_data / "post.db").unlink()

    code, out, err = run_cli(["backup", "--keep", "1"], capsys)

    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("twitter-system backup: error: ")
    assert "post database" in err
    assert "does not exist" in err
    assert backup_names(backups_dir) == kept
    assert hidden_folders(backups_dir) == []
    assert not (embedded_data / "post.db").exists()


def test_corrupted_database_fails_without_partial_folder(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (embedded_data / "post.db").write_bytes(b"this is not an SQLite database" * 200)

    code, _, err = run_cli(["backup"], capsys)

    assert code == 1
    assert "post database" in err
    assert backup_names(embedded_data / "backups") == []
    assert hidden_folders(embedded_data / "backups") == []


def break_index(database: Path) -> None:
    """Point the index of a populated table at an empty index's pages, which integrity_check reports."""
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE INDEX posts_body ON posts (body)")
        connection.execute("CREATE TABLE spare (value TEXT)")
        connection.execute("CREATE INDEX spare_value ON spare (value)")
        connection.commit()
        (empty_root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'spare_value'").fetchone()
        connection.execute("PRAGMA writable_schema = ON")
        connection.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = 'posts_body'", (empty_root,))
        connection.commit()


def test_database_failing_integrity_check_is_not_a_good_backup(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_index(embedded_data / "post.db")

    code, _, err = run_cli(["backup"], capsys)

    assert code == 1
    assert "post dump" in err
    assert "failed SQLite's integrity check" in err
    assert "missing from index posts_body" in err
    assert backup_names(embedded_data / "backups") == []
    assert hidden_folders(embedded_data / "backups") == []


def test_database_without_tables_is_not_a_good_backup(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (embedded_data / "account.db").unlink()
    with closing(sqlite3.connect(embedded_data / "account.db")) as empty:
        empty.execute("PRAGMA user_version = 1")

    code, _, err = run_cli(["backup"], capsys)

    assert code == 1
    assert "account" in err
    assert "contains no table" in err
    assert backup_names(embedded_data / "backups") == []
    assert hidden_folders(embedded_data / "backups") == []


def test_leftovers_of_interrupted_run_are_removed(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups_dir = embedded_data / "backups"
    leftover = backups_dir / ".partial-20261204T203000Z-0badc0de"
    leftover.mkdir(parents=True)
    (leftover / "account.sqlite3").write_bytes(b"half a dump")

    code, _, err = run_cli(["backup"], capsys)

    assert code == 0, err
    assert hidden_folders(backups_dir) == []
    assert len(backup_names(backups_dir)) == 1


def test_unsupported_database_engine_is_usage_error(
    embedded_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWITTER_POST_DATABASE_URL", "mysql+aiomysql://twitter:secret@127.0.0.1/post")

    code, _, err = run_cli(["backup"], capsys)

    assert code == 2
    assert "unsupported database engine 'mysql'" in err
    assert "secret" not in err
    assert not (embedded_data / "backups").exists()


# -- database URLs ---------------------------------------------------------------------


def test_postgres_url_becomes_libpq_options() -> None:
    target = database_target("postgresql+asyncpg://twitter:p%40ss%20word@db.internal:5433/account?ssl=require")

    assert target == PostgresTarget(
        database="account", host="db.internal", port=5433, user="twitter", password="p@ss word", tls_mode="require"
    )
    assert isinstance(target, PostgresTarget)
    arguments = target.connection_arguments()
    assert arguments == [
        "--no-password",
        "--dbname=account",
        "--host=db.internal",
        "--port=5433",
        "--username=twitter",
    ]
    environment = target.environment({"PATH": "/usr/bin"})
    assert environment["PGPASSWORD"] == "p@ss word"
    assert environment["PGSSLMODE"] == "require"
    assert environment["PATH"] == "/usr/bin"


def test_postgres_password_stays_out_of_arguments_and_repr() -> None:
    target = database_target("postgresql://twitter:hunter2-secret@127.0.0.1/post")

    assert isinstance(target, PostgresTarget)
    assert not any("hunter2-secret" in argument for argument in target.connection_arguments())
    assert "hunter2-secret" not in repr(target)
    assert "hunter2-secret" not in target.describe()


def test_postgres_url_with_socket_folder_and_sslmode() -> None:
    target = database_target("postgresql+psycopg://twitter@/post?host=/run/postgresql&sslmode=disable")

    assert target == PostgresTarget(database="post", host="/run/postgresql", user="twitter", tls_mode="disable")


def test_sqlite_url_becomes_file_path() -> None:
    assert database_target("sqlite+aiosqlite:///var/account.db") == SqliteTarget(path=Path("var/account.db"))
    assert database_target("sqlite:////srv/twitter/post.db") == SqliteTarget(path=Path("/srv/twitter/post.db"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite+aiosqlite:///:memory:", "in-memory"),
        ("sqlite://", "in-memory"),
        ("postgresql+asyncpg://twitter:pw@127.0.0.1:5432", "names no database"),
        ("not a url", "invalid database URL"),
    ],
)
def test_unusable_database_url_is_rejected(url: str, message: str) -> None:
    with pytest.raises(BackupUsageError, match=message):
        database_target(url)


def test_default_settings_point_at_embedded_files(twitter_environment: Path) -> None:
    from twitter_shared.settings import Settings

    settings = Settings()

    assert database_target(settings.database_url(ServiceName.ACCOUNT)) == SqliteTarget(
        path=twitter_environment / "account.db"
    )
