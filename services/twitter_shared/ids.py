"""64-bit time-ordered ids (milliseconds, worker, sequence) with worker numbers leased from the database.

Layout, most significant first: 41 bits of milliseconds since ``EPOCH_MS`` (good
until 2089), 10 bits of worker number, 12 bits of sequence. Replicas start from
the same image and settings, so a worker number cannot come from the host name:
each process leases one from a row in its own database and renews the lease; a
process that loses its lease stops issuing ids rather than risk a duplicate.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared.database import transaction
from twitter_shared.errors import Unavailable

log = structlog.get_logger()

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKERS = 1 << WORKER_BITS
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
# A crashed process's number becomes free after this long; renewals run at a third of it.
LEASE_SECONDS = 60


def id_for_time(moment: datetime) -> int:
    """Return the smallest id any worker can issue at ``moment``; useful as a cursor for a time."""
    millis = int(moment.timestamp() * 1000) - EPOCH_MS
    return max(millis, 0) << (WORKER_BITS + SEQUENCE_BITS)


def time_of_id(snowflake: int) -> datetime:
    millis = (snowflake >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


class IdGenerator:
    """Issue unique, increasing ids for one worker number."""

    def __init__(self, *, worker: int) -> None:
        if not 0 <= worker < MAX_WORKERS:
            raise ValueError(f"worker {worker} is outside 0..{MAX_WORKERS - 1}")
        self.worker = worker
        self.valid = True
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        if not self.valid:
            raise Unavailable("This process lost its id worker lease and cannot create records")
        now_ms = int(time.time() * 1000) - EPOCH_MS
        # A clock that steps back must not reissue ids: keep counting from the last millisecond.
        now_ms = max(now_ms, self._last_ms)
        if now_ms == self._last_ms:
            self._sequence = (self._sequence + 1) & MAX_SEQUENCE
            if self._sequence == 0:
                now_ms += 1
        else:
            self._sequence = 0
        self._last_ms = now_ms
        return (now_ms << (WORKER_BITS + SEQUENCE_BITS)) | (self.worker << SEQUENCE_BITS) | self._sequence


class WorkerLease:
    """A worker number held in the ``worker_leases`` table of the service's own database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"
        self.worker: int | None = None

    async def acquire(self) -> int:
        """Claim the lowest free or expired worker number."""
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=LEASE_SECONDS)
        async with transaction(self.engine) as connection:
            rows = await connection.execute(text("SELECT worker_id, expires_at FROM worker_leases"))
            taken = {row.worker_id: _aware(row.expires_at) for row in rows}
            for worker in range(MAX_WORKERS):
                if worker not in taken:
                    await connection.execute(
                        text("INSERT INTO worker_leases (worker_id, holder, expires_at) VALUES (:w, :h, :e)"),
                        {"w": worker, "h": self.holder, "e": expires},
                    )
                    break
                if taken[worker] < now:
                    claimed = await connection.execute(
                        text("UPDATE worker_leases SET holder = :h, expires_at = :e WHERE worker_id = :w AND expires_at < :now"),
                        {"w": worker, "h": self.holder, "e": expires, "now": now},
                    )
                    if claimed.rowcount == 1:
                        break
            else:
                raise Unavailable("No free id worker number: too many processes share this database")
        self.worker = worker
        log.info("ids.worker_leased", worker=worker)
        return worker

    async def renew(self) -> bool:
        """Extend the lease; False means another process holds the number now."""
        expires = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)
        async with transaction(self.engine) as connection:
            renewed = await connection.execute(
                text("UPDATE worker_leases SET expires_at = :e WHERE worker_id = :w AND holder = :h"),
                {"w": self.worker, "h": self.holder, "e": expires},
            )
        return renewed.rowcount == 1

    async def release(self) -> None:
        async with transaction(self.engine) as connection:
            await connection.execute(
                text("DELETE FROM worker_leases WHERE worker_id = :w AND holder = :h"), {"w": self.worker, "h": self.holder}
            )


async def keep_lease(lease: WorkerLease, generator: IdGenerator) -> None:
    """Renew ``lease`` until cancelled; on loss, stop ``generator`` and exit so a supervisor restarts us."""
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            still_ours = await lease.renew()
        except Unavailable:
            log.warning("ids.lease_renewal_failed", worker=lease.worker, retry_in_seconds=LEASE_SECONDS / 3)
            continue
        if not still_ours:
            generator.valid = False
            log.error("ids.lease_lost", worker=lease.worker, action="exiting so the supervisor restarts the process")
            os._exit(3)


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes; every time we store is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
