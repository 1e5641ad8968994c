"""``twitter-system backup-scheduler``: cron parsing, the loop on a fake clock, and a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.tools.test_backup import (
    backup_names,
    create_sqlite_databases,
    embedded_data,  # noqa: F401 - fixture
    logging_setups,  # noqa: F401 - autouse fixture
    hidden_folders,
    run_cli,
    twitter_environment,  # noqa: F401 - fixture
)
from twitter_tools._backup_errors import DumpError
from twitter_tools.scheduler import MAX_WAIT_SLICE_SECONDS, CronSchedule, ScheduleError, run_on_schedule

TWITTER_SYSTEM = Path(sys.executable).parent / "twitter-system"
# Generous upper bounds for a real process, only to fail instead of hanging.
PROCESS_DEADLINE_SECONDS = 60


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the schedule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("0 */4 * * *", "2026-12-04T20:30:00", "2026-12-05T00:00:00"),
        ("0 */4 * * *", "2026-12-05T00:00:00", "2026-12-05T04:00:00"),
        ("0 */4 * * *", "2026-12-05T03:59:59", "2026-12-05T04:00:00"),
        ("30 2 * * 1", "2026-12-04T20:30:00", "2026-12-07T02:30:00"),
        ("*/15 * * * *", "2026-12-31T23:50:00", "2027-01-01T00:00:00"),
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("*/5 * * * * *", "2026-12-04T20:30:01", "2026-12-04T20:30:05"),
        ("0 0 */4 * * *", "2026-12-04T20:30:00", "2026-12-05T00:00:00"),
    ],
)
def test_schedule_next_run(expression: str, moment: str, expected: str) -> None:
    assert CronSchedule(expression).next_after(at(moment)) == at(expected)


def test_schedule_runs_in_utc_whatever_the_input_zone() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 4, 21, 30, tzinfo=berlin_winter)

    next_run = CronSchedule("0 */4 * * *").next_after(moment)

    assert next_run == at("2026-12-05T00:00:00")
    assert next_run.utcoffset() == timedelta(0)


def test_schedule_successive_runs_every_four_hours() -> None:
    schedule = CronSchedule("0 */4 * * *")
    runs = [at("2026-12-04T21:07:00")]
    for _ in range(7):
        runs.append(schedule.next_after(runs[-1]))

    assert [run.hour for run in runs[1:]] == [0, 4, 8, 12, 16, 20, 0]
    assert all(later - earlier == timedelta(hours=4) for earlier, later in zip(runs[1:], runs[2:]))


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "0 */4 * * * * *",
        "61 * * * *",
        "0 25 * * *",
        "*/0 * * * *",
        "0 0 32 * *",
        "0 0 * 13 *",
        "0 0 31 2 *",
        "H * * * *",
        "every four hours",
        "a b c d e",
    ],
)
def test_invalid_schedule_is_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError, match="invalid cron schedule"):
        CronSchedule(expression)


def test_scheduler_rejects_invalid_schedule_at_start(
    embedded_data: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    code, _, err = run_cli(["backup-scheduler", "--schedule", "0 */4 * *"], capsys)

    assert code == 2
    assert err.startswith("twitter-system backup-scheduler: error: invalid cron schedule '0 */4 * *'")
    assert err.count("\n") == 1


def test_scheduler_rejects_invalid_schedule_setting(
    embedded_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    monkeypatch.setenv("TWITTER_BACKUP_SCHEDULE", "0 99 * * *")

    code, _, err = run_cli(["backup-scheduler"], capsys)

    assert code == 2
    assert "invalid cron schedule '0 99 * * *'" in err


# -- the loop on a fake clock ----------------------------------------------------------


class FakeClock:
    """A clock whose waits pass at once, moving its time forward."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.current

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        self.current += timedelta(seconds=seconds)


def test_loop_fires_at_each_scheduled_time() -> None:
    clock = FakeClock(at("2026-12-04T20:30:00"))
    stop = threading.Event()
    fired: list[datetime] = []

    def backup() -> None:
        fired.append(clock.now())
        if len(fired) == 3:
            stop.set()

    with capture_logs() as logs:
        started = run_on_schedule(
            next_run=CronSchedule("0 */4 * * *").next_after, run_backup=backup, clock=clock, stop=stop
        )

    assert started == 3
    assert fired == [at("2026-12-05T00:00:00"), at("2026-12-05T04:00:00"), at("2026-12-05T08:00:00")]
    next_runs = [event for event in logs if event["event"] == "backup_scheduler.next_run"]
    assert [event["at"] for event in next_runs] == [
        "2026-12-05T00:00:00Z",
        "2026-12-05T04:00:00Z",
        "2026-12-05T08:00:00Z",
    ]
    assert next_runs[0]["in_seconds"] == 3.5 * 3600


def test_loop_sleeps_in_bounded_slices() -> None:
    clock = FakeClock(at("2026-12-04T20:30:00"))
    stop = threading.Event()

    run_on_schedule(
        next_run=CronSchedule("0 */4 * * *").next_after, run_backup=stop.set, clock=clock, stop=stop
    )

    assert max(clock.waits) <= MAX_WAIT_SLICE_SECONDS
    assert sum(clock.waits) == 3.5 * 3600


def test_loop_survives_failed_backup() -> None:
    clock = FakeClock(at("2026-12-04T20:30:00"))
    stop = threading.Event()
    attempts: list[datetime] = []

    def backup() -> None:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise DumpError("pg_dump of the post database failed (exit status 1): connection refused")
        stop.set()

    with capture_logs() as logs:
        started = run_on_schedule(
            next_run=CronSchedule("0 */4 * * *").next_after, run_backup=backup, clock=clock, stop=stop
        )

    assert started == 2
    assert attempts == [at("2026-12-05T00:00:00"), at("2026-12-05T04:00:00")]
    failures = [event for event in logs if event["event"] == "backup_scheduler.backup_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"
    assert "connection refused" in failures[0]["error"]
    assert failures[0]["next_step"] == "will try again at the next scheduled time"


def test_loop_stops_while_waiting_without_backup() -> None:
    stop = threading.Event()
    fired: list[datetime] = []

    class StoppingClock(FakeClock):
        def wait(self, seconds: float, stop: threading.Event) -> None:
            super().wait(seconds, stop)
            stop.set()

    clock = StoppingClock(at("2026-12-04T20:30:00"))

    started = run_on_schedule(
        next_run=CronSchedule("0 */4 * * *").next_after,
        run_backup=lambda: fired.append(clock.now()),
        clock=clock,
        stop=stop,
    )

    assert started == 0
    assert fired == []


# -- the real process ------------------------------------------------------------------


@pytest.fixture
def scheduler_environment(embedded_data: Path) -> dict[str, str]:  # noqa: F811
    """Environment for a scheduler subprocess: the TWITTER_ variables point at the test databases."""
    return dict(os.environ)


def wait_for(condition: Callable[[], bool], *, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + PROCESS_DEADLINE_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the scheduler exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {PROCESS_DEADLINE_SECONDS} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def start_scheduler(tmp_path: Path, scheduler_environment: dict[str, str]) -> Iterator:
    processes: list[subprocess.Popen] = []

    def start(*arguments: str) -> tuple[subprocess.Popen, Path]:
        output = tmp_path / f"scheduler-{len(processes)}.log"
        with output.open("w") as stream:
            process = subprocess.Popen(
                [str(TWITTER_SYSTEM), "backup-scheduler", *arguments],
                env=scheduler_environment,
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return process, output

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_scheduler_process_fires_and_stops_on_signal(
    embedded_data: Path, start_scheduler, stop_signal: signal.Signals  # noqa: F811
) -> None:
    backups_dir = embedded_data / "backups"
    process, output = start_scheduler("--schedule", "*/2 * * * * *", "--keep", "2")

    wait_for(lambda: len(backup_names(backups_dir)) >= 1, what="the first backup", process=process)
    process.send_signal(stop_signal)
    code = process.wait(timeout=PROCESS_DEADLINE_SECONDS)

    log_text = output.read_text()
    assert code == 0, log_text
    assert "backup_scheduler.started" in log_text
    assert "backup_scheduler.next_run" in log_text
    assert "backup.finished" in log_text
    assert "backup_scheduler.stopped" in log_text
    assert hidden_folders(backups_dir) == []


def test_scheduler_process_survives_failed_backups(
    embedded_data: Path, start_scheduler  # noqa: F811
) -> None:
    backups_dir = embedded_data / "backups"
    (embedded_data / "post.db").unlink()
    process, output = start_scheduler("--schedule", "* * * * * *")

    wait_for(
        lambda: output.read_text().count("backup_scheduler.backup_failed") >= 2,
        what="two failed backups",
        process=process,
    )
    (embedded_data / "account.db").unlink()
    create_sqlite_databases(embedded_data)
    wait_for(lambda: len(backup_names(backups_dir)) >= 1, what="a backup after the failures", process=process)
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=PROCESS_DEADLINE_SECONDS)

    log_text = output.read_text()
    assert code == 0, log_text
    assert "post database" in log_text
    assert hidden_folders(backups_dir) == []
