"""``twitter-system backup-scheduler``: run ``backup`` on a cron schedule, in the foreground.

The schedule has the five standard cron fields (minute hour day-of-month month
day-of-week), evaluated in UTC, parsed by croniter. A six-field schedule has a
leading seconds field (``*/5 * * * * *`` is every five seconds). That form is
meant for tests and demos, which cannot wait minutes for the scheduler to fire.

The loop is written against a ``Clock`` and a "next run" function so tests can
drive it with a fake clock. It logs each next run time, survives a failed
backup (logs it and waits for the next run), and stops on SIGTERM or SIGINT:
when idle at once, and during a backup by interrupting it, which removes the
partial backup folder.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog
from croniter import CroniterError, croniter

from twitter_shared.logs import configure_logging
from twitter_shared.settings import Settings
from twitter_tools._backup_errors import BackupError, BackupUsageError, report_failure
from twitter_tools.backup import create_backup, positive_int

log = structlog.get_logger(__name__)

STANDARD_FIELD_COUNT = 5
WITH_SECONDS_FIELD_COUNT = 6

# Sleeping in slices bounds how far a wall-clock change (NTP step, suspended VM)
# can push a run past its time.
MAX_WAIT_SLICE_SECONDS = 30.0


class ScheduleError(BackupUsageError):
    """A cron schedule is invalid."""


class CronSchedule:
    """A parsed cron schedule that returns its run times in UTC."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) not in (STANDARD_FIELD_COUNT, WITH_SECONDS_FIELD_COUNT):
            raise ScheduleError(
                f"invalid cron schedule {expression!r}: expected 5 fields (minute hour day month weekday), "
                f"or 6 with a leading seconds field; got {len(fields)}"
            )
        self.expression = " ".join(fields)
        self.has_seconds = len(fields) == WITH_SECONDS_FIELD_COUNT
        try:
            self.next_after(datetime.now(UTC))
        except (CroniterError, ValueError, KeyError) as error:
            raise ScheduleError(f"invalid cron schedule {expression!r}: {error}") from error

    def next_after(self, moment: datetime) -> datetime:
        """Return the first run time strictly after ``moment`` (an aware datetime)."""
        iterator = croniter(self.expression, moment.astimezone(UTC), second_at_beginning=self.has_seconds)
        return iterator.get_next(datetime).astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Return after ``seconds``, or earlier once ``stop`` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


def run_on_schedule(
    *,
    next_run: Callable[[datetime], datetime],
    run_backup: Callable[[], None],
    clock: Clock,
    stop: threading.Event,
) -> int:
    """Call ``run_backup`` at each time ``next_run`` returns, until ``stop`` is set.

    Returns the number of backups started. A backup that raises ``BackupError``
    is logged and the loop goes on to the next run time.
    """
    started_backups = 0
    while not stop.is_set():
        due = next_run(clock.now())
        log.info("backup_scheduler.next_run", at=_iso(due), in_seconds=round((due - clock.now()).total_seconds(), 3))
        if not _wait_until(due, clock=clock, stop=stop):
            break

        started_backups += 1
        try:
            run_backup()
        except BackupError as error:
            log.error(
                "backup_scheduler.backup_failed",
                error=str(error),
                error_type=type(error).__name__,
                next_step="will try again at the next scheduled time",
            )
    return started_backups


def _wait_until(due: datetime, *, clock: Clock, stop: threading.Event) -> bool:
    """Wait until ``due``; return False if ``stop`` was set first."""
    while not stop.is_set():
        remaining = (due - clock.now()).total_seconds()
        if remaining <= 0:
            return True
        clock.wait(min(remaining, MAX_WAIT_SLICE_SECONDS), stop)
    return False


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        help="cron schedule in UTC, 5 fields, or 6 with a leading seconds field for tests "
        "(default: TWITTER_BACKUP_SCHEDULE, '0 */4 * * *', every 4 hours)",
    )
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


class _StopDuringBackup(BaseException):
    """Raised from the signal handler to abort a running backup; BaseException so no ``except Exception`` eats it."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="backup-scheduler", log_format=settings.log_format, level=settings.log_level)
    try:
        schedule = CronSchedule(args.schedule or settings.backup_schedule)
    except ScheduleError as error:
        return report_failure("backup-scheduler", error)
    destination = args.dest or settings.backup_folder()
    keep = args.keep or settings.backup_keep

    stop = threading.Event()
    backup_running = threading.Event()

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        log.info(
            "backup_scheduler.stop_requested",
            signal=signal.Signals(signal_number).name,
            interrupting_backup=backup_running.is_set(),
        )
        stop.set()
        if backup_running.is_set():
            raise _StopDuringBackup

    def run_backup() -> None:
        backup_running.set()
        try:
            create_backup(settings=settings, destination=destination, keep=keep)
        finally:
            backup_running.clear()

    previous_handlers = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    log.info("backup_scheduler.started", schedule=schedule.expression, timezone="UTC", destination=str(destination))
    try:
        run_on_schedule(next_run=schedule.next_after, run_backup=run_backup, clock=SystemClock(), stop=stop)
    except _StopDuringBackup:
        log.info("backup_scheduler.backup_interrupted", next_step="the partial backup folder was removed")
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    log.info("backup_scheduler.stopped")
    return 0

