"""64-bit time-ordered ids (milliseconds, worker, sequence) with worker numbers leased from the database.

Layout, most significant first: 41 bits of milliseconds since ``EPOCH_MS`` (good
until 2089), 10 bits of worker number, 12 bits of sequence. Replicas start from
the same image and settings, so a worker number cannot come from the host name:
each process leases one from a row in its own database and renews the lease. A
process that loses its lease stops issuing ids rather than risk a duplicate.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared.database import transaction
from twitter_shared.errors import Unavailable
from twitter_shared.tables import shared_tables

log = structlog.get_logger()

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKERS = 1 << WORKER_BITS
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
# A crashed process's number becomes free after this long; renewals run at a third of it.
LEASE_SECONDS = 60
# Processes that start together read the same free numbers, and each round of a race has one
# winner. A random pause before the next try spreads the losers out, so they stop racing in lockstep.
ACQUIRE_ATTEMPTS = 40
RETRY_PAUSE_SECONDS = 0.05
leases = shared_tables["worker_leases"]


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
        """Claim the lowest free or expired worker number, retrying when another process claimed it first."""
        for _ in range(ACQUIRE_ATTEMPTS):
            try:
                return await self._try_acquire()
            except IntegrityError:
                log.info("ids.worker_race_lost", action="trying the next free number")
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_SECONDS))
        raise Unavailable("Could not lease an id worker number: too many processes starting at once")

    async def _try_acquire(self) -> int:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=LEASE_SECONDS)
        async with transaction(self.engine) as connection:
            rows = await connection.execute(select(leases.c.worker_id, leases.c.expires_at))
            taken = {row.worker_id: _aware(row.expires_at) for row in rows}
            for worker in range(MAX_WORKERS):
                if worker not in taken:
                    # Two processes may pick the same free number; the primary key lets one of them win.
                    await connection.execute(leases.insert().values(worker_id=worker, holder=self.holder, expires_at=expires))
                    break
                if taken[worker] < now:
                    claimed = await connection.execute(
                        update(leases)
                        .where(leases.c.worker_id == worker, leases.c.expires_at < now)
                        .values(holder=self.holder, expires_at=expires)
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
                update(leases)
                .where(leases.c.worker_id == self.worker, leases.c.holder == self.holder)
                .values(expires_at=expires)
            )
        return renewed.rowcount == 1

    async def release(self) -> None:
        async with transaction(self.engine) as connection:
            await connection.execute(
                delete(leases).where(leases.c.worker_id == self.worker, leases.c.holder == self.holder)
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
