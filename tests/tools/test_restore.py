"""``twitter-system restore`` in embedded mode: round trips, and refusals that change nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.tools.test_backup import (
    ACCOUNT_ROWS,
    POST_ROWS,
    backup_names,
    embedded_data,  # noqa: F401 - fixture
    logging_setups,  # noqa: F401 - autouse fixture
    run_cli,
    sqlite_rows,
    twitter_environment,  # noqa: F401 - fixture
)
from twitter_tools import cli
from twitter_tools._backup_files import MANIFEST_NAME, backup_folder_lock


@pytest.fixture
def backed_up(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> Path:  # noqa: F811 - fixture use
    """Return the folder of one backup of the embedded databases."""
    code, _, err = run_cli(["backup"], capsys)
    assert code == 0, err
    return embedded_data / "backups" / backup_names(embedded_data / "backups")[0]


def change_live_data(data_dir: Path) -> None:
    with closing(sqlite3.connect(data_dir / "account.db")) as account:
        account.execute("DELETE FROM accounts WHERE id = 1")
        account.execute("INSERT INTO accounts VALUES (3, 'mallory')")
        account.commit()
    with closing(sqlite3.connect(data_dir / "post.db")) as post:
        post.execute("UPDATE posts SET body = 'edited after the backup'")
        post.commit()


def file_digests(data_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((data_dir / name).read_bytes()).hexdigest() for name in ("account.db", "post.db")}


# -- round trips -----------------------------------------------------------------------


def test_restore_brings_back_backed_up_rows(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    change_live_data(embedded_data)

    code, out, err = run_cli(["restore", backed_up.name], capsys)

    assert code == 0, err
    assert sqlite_rows(embedded_data / "account.db", "accounts") == ACCOUNT_ROWS
    assert sqlite_rows(embedded_data / "post.db", "posts") == POST_ROWS
    assert "twitter-system rebuild-timelines" in out


def test_restore_latest_picks_newest_backup(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    change_live_data(embedded_data)
    code, _, err = run_cli(["backup"], capsys)
    assert code == 0, err
    changed_accounts = sqlite_rows(embedded_data / "account.db", "accounts")
    with closing(sqlite3.connect(embedded_data / "account.db")) as account:
        account.execute("DELETE FROM accounts")
        account.commit()

    code, _, err = run_cli(["restore", "--latest"], capsys)

    assert code == 0, err
    assert sqlite_rows(embedded_data / "account.db", "accounts") == changed_accounts
    assert changed_accounts != ACCOUNT_ROWS


def test_restore_accepts_path_and_dest(
    embedded_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    destination = tmp_path / "cold"
    code, _, err = run_cli(["backup", "--dest", str(destination)], capsys)
    assert code == 0, err
    (name,) = backup_names(destination)
    change_live_data(embedded_data)

    code, _, err = run_cli(["restore", str(destination / name)], capsys)
    assert code == 0, err
    assert sqlite_rows(embedded_data / "account.db", "accounts") == ACCOUNT_ROWS

    change_live_data(embedded_data)
    code, _, err = run_cli(["restore", "--dest", str(destination), "--latest"], capsys)
    assert code == 0, err
    assert sqlite_rows(embedded_data / "post.db", "posts") == POST_ROWS


def test_restore_creates_missing_database_files(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    (embedded_data / "account.db").unlink()
    (embedded_data / "post.db").unlink()

    code, _, err = run_cli(["restore", backed_up.name], capsys)

    assert code == 0, err
    assert sqlite_rows(embedded_data / "account.db", "accounts") == ACCOUNT_ROWS
    assert sqlite_rows(embedded_data / "post.db", "posts") == POST_ROWS


def test_restore_into_live_wal_database(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    with closing(sqlite3.connect(embedded_data / "post.db")) as live:
        live.execute("PRAGMA journal_mode=WAL")
        live.execute("DELETE FROM posts")
        live.commit()

        code, _, err = run_cli(["restore", backed_up.name], capsys)

        assert code == 0, err
        assert live.execute("SELECT * FROM posts ORDER BY id").fetchall() == POST_ROWS


def test_verify_only_changes_nothing(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    change_live_data(embedded_data)
    before = file_digests(embedded_data)

    code, out, err = run_cli(["restore", "--verify-only", backed_up.name], capsys)

    assert code == 0, err
    assert "intact" in out
    assert file_digests(embedded_data) == before


# -- refusals --------------------------------------------------------------------------


def corrupt_one_byte(backup: Path) -> None:
    dump = backup / "post.sqlite3"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))


def truncate_file(backup: Path) -> None:
    dump = backup / "account.sqlite3"
    dump.write_bytes(dump.read_bytes()[:1000])


def delete_file(backup: Path) -> None:
    (backup / "post.sqlite3").unlink()


def edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(backup: Path) -> None:
        manifest = json.loads((backup / MANIFEST_NAME).read_text())
        change(manifest)
        (backup / MANIFEST_NAME).write_text(json.dumps(manifest))

    return tamper


def _set_checksum(manifest: dict) -> None:
    manifest["files"][0]["sha256"] = "0" * 64


def _set_size(manifest: dict) -> None:
    manifest["files"][1]["size"] += 1


def _drop_database(manifest: dict) -> None:
    del manifest["files"][1]


def _point_outside(manifest: dict) -> None:
    manifest["files"][0]["file"] = "../account.db"


def _unknown_format(manifest: dict) -> None:
    manifest["format"] = 99


def truncate_manifest(backup: Path) -> None:
    text = (backup / MANIFEST_NAME).read_text()
    (backup / MANIFEST_NAME).write_text(text[: len(text) // 2])


def delete_manifest(backup: Path) -> None:
    (backup / MANIFEST_NAME).unlink()


def corrupt_dump_and_manifest(backup: Path) -> None:
    """Replace a dump with garbage and make the manifest agree, so only the dump check can tell."""
    dump = backup / "post.sqlite3"
    dump.write_bytes(b"\x00garbage" * 1024)
    edit_manifest(lambda manifest: manifest["files"][1].update(
        size=dump.stat().st_size, sha256=hashlib.sha256(dump.read_bytes()).hexdigest()
    ))(backup)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (corrupt_one_byte, "does not match the SHA-256"),
        (truncate_file, "truncated"),
        (delete_file, "missing post.sqlite3"),
        (edit_manifest(_set_checksum), "does not match the SHA-256"),
        (edit_manifest(_set_size), "the manifest says"),
        (edit_manifest(_drop_database), "lists databases ['account'], expected ['account', 'post']"),
        (edit_manifest(_point_outside), "invalid file '../account.db'"),
        (edit_manifest(_unknown_format), "has format 99"),
        (truncate_manifest, "is not valid JSON"),
        (delete_manifest, "has no manifest.json"),
        (corrupt_dump_and_manifest, "not a readable SQLite database"),
    ],
    ids=[
        "corrupted-file",
        "truncated-file",
        "missing-file",
        "manifest-checksum-changed",
        "manifest-size-changed",
        "manifest-database-removed",
        "manifest-path-outside-backup",
        "manifest-unknown-format",
        "manifest-truncated",
        "manifest-missing",
        "dump-garbage-with-matching-manifest",
    ],
)
def test_restore_refuses_damaged_backup(
    damage: Callable[[Path], None],
    message: str,
    embedded_data: Path,  # noqa: F811
    backed_up: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    change_live_data(embedded_data)
    before = file_digests(embedded_data)
    damage(backed_up)

    code, out, err = run_cli(["restore", backed_up.name], capsys)

    assert code == 4
    assert err.startswith("twitter-system restore: error: ")
    assert err.count("\n") == 1
    assert message in err
    assert file_digests(embedded_data) == before


def test_restore_refuses_engine_mismatch(
    embedded_data: Path,  # noqa: F811
    backed_up: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No server listens there: the mismatch must be found before any connection.
    monkeypatch.setenv("TWITTER_POST_DATABASE_URL", "postgresql+asyncpg://twitter:pw@127.0.0.1:1/post")
    before = file_digests(embedded_data)

    code, _, err = run_cli(["restore", backed_up.name], capsys)

    assert code == 4
    assert "configured post database is postgresql" in err
    assert file_digests(embedded_data) == before


def test_restore_unknown_backup_is_usage_error(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    code, _, err = run_cli(["restore", "20200101T000000Z-00000000"], capsys)

    assert code == 2
    assert "not found" in err


def test_restore_latest_without_backups_is_usage_error(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    code, _, err = run_cli(["restore", "--latest"], capsys)

    assert code == 2
    assert "no backups in" in err


def test_restore_needs_backup_or_latest(embedded_data: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["restore"])
    assert exit_info.value.code == 2

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["restore", "--latest", "20200101T000000Z-00000000"])
    assert exit_info.value.code == 2


def test_restore_refused_while_backup_runs(
    embedded_data: Path, backed_up: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    change_live_data(embedded_data)
    before = file_digests(embedded_data)

    with backup_folder_lock(backed_up.parent):
        code, _, err = run_cli(["restore", backed_up.name], capsys)

    assert code == 3
    assert "another backup or restore is running" in err
    assert file_digests(embedded_data) == before

