"""``twitter-system serve`` as a real process: start-up checks and the exit on a lost database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.postgres import PostgresServer, free_port
from tests.support.system import logged_events, wait_until_ready


def serve_command(service: str) -> list[str]:
    return [sys.executable, "-m", "twitter_tools.cli", "serve", service]


def start_account_service(tmp_path: Path, **settings: str) -> tuple[subprocess.Popen, Path]:
    """Start ``serve account --migrate`` with JSON logs written to a file; return the process and the file."""
    env = {**os.environ, "TWITTER_SERVICE_TOKEN": "token", "TWITTER_LOG_FORMAT": "json", **settings}
    log_path = tmp_path / "account.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([*serve_command("account"), "--migrate"], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return process, log_path


def test_serve_refuses_to_start_without_a_service_token(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TWITTER_SERVICE_TOKEN"}
    env["TWITTER_DATA_DIR"] = str(tmp_path)

    result = subprocess.run(serve_command("account"), env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert "TWITTER_SERVICE_TOKEN" in result.stdout


def test_serve_rejects_invalid_settings(tmp_path: Path) -> None:
    env = {**os.environ, "TWITTER_PORT": "not-a-port", "TWITTER_DATA_DIR": str(tmp_path)}

    result = subprocess.run(serve_command("account"), env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert "invalid settings" in result.stderr
    assert "port" in result.stderr


def test_service_exits_non_zero_when_its_database_stays_lost(own_postgres: PostgresServer, tmp_path: Path) -> None:
    port = free_port()
    process, log_path = start_account_service(
        tmp_path,
        TWITTER_PORT=str(port),
        TWITTER_ACCOUNT_DATABASE_URL=own_postgres.create_database("account"),
        TWITTER_DATABASE_LOST_EXIT_SECONDS="1",
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        own_postgres.stop()
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()

    assert exit_code == 3
    assert "database.lost" in logged_events(output)


def test_served_process_freezes_its_startup_objects(tmp_path: Path) -> None:
    port = free_port()
    process, log_path = start_account_service(tmp_path, TWITTER_PORT=str(port), TWITTER_DATA_DIR=str(tmp_path))
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz")
    finally:
        process.terminate()
        process.wait(timeout=30)
    frozen = [
        json.loads(line) for line in log_path.read_text().splitlines() if '"serve.startup_objects_frozen"' in line
    ]

    assert len(frozen) == 1
    assert frozen[0]["objects"] > 10_000
