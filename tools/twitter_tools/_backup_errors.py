"""Exceptions of the ``backup``, ``restore`` and ``backup-scheduler`` commands.

Library errors (``OSError``, ``sqlite3.Error``, a failed ``pg_dump``, invalid JSON)
are re-raised as one of these, chained with ``from``, so each command turns any
failure into one line on stderr and an exit code that scripts can tell apart.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class BackupError(Exception):
    """A backup or restore failed; the message is one line meant for the user."""

    exit_code = 1


class BackupUsageError(BackupError):
    """An option, setting or backup name is invalid; nothing was started."""

    exit_code = 2


class BackupInProgressError(BackupError):
    """Another backup or restore holds the lock on the backup folder."""

    exit_code = 3


class BackupVerificationError(BackupError):
    """A backup does not match its manifest, or a dump in it is unreadable."""

    exit_code = 4


class BackupInterruptedError(BackupError):
    """SIGTERM or SIGINT stopped the command; what it was writing has been removed."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signal_number).name}")
        # The shell convention for a process ended by a signal.
        self.exit_code = 128 + signal_number


class DumpError(BackupError):
    """A database could not be dumped, or its dump failed the checks after dumping."""


class RestoreError(BackupError):
    """Loading a verified dump into a database failed."""


def report_failure(command: str, error: BackupError) -> int:
    """Print ``error`` as the one-line message of ``twitter-system COMMAND``; return its exit code."""
    print(f"twitter-system {command}: error: {error}", file=sys.stderr)
    return error.exit_code


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``BackupInterruptedError`` while the block runs.

    Without this, SIGTERM (``docker stop``, a deleted Kubernetes Job) would end the
    process before it removes its partial backup folder and stops ``pg_dump``.
    """

    def interrupt(signal_number: int, _frame: FrameType | None) -> None:
        raise BackupInterruptedError(signal_number)

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
