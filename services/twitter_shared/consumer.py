"""Pull another service's outbox and apply each event, with the cursor kept in our own database.

One consumer per source is active at a time across replicas: it holds a row in
``consumer_leases``. Events and the cursor move in one transaction, so a crash
between them replays a batch, which is why every ``apply`` must be idempotent.
A source that is down is retried with backoff; nothing is skipped meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_shared.client import InternalClient
from twitter_shared.database import transaction
from twitter_shared.errors import ServiceError
from twitter_shared.outbox import Event

log = structlog.get_logger()

LEASE_SECONDS = 15
LONG_POLL_MS = 4_000
# The long poll's HTTP timeout is its wait plus this margin for the response itself.
LONG_POLL_MARGIN_SECONDS = 5.0
RETRY_CAP_SECONDS = 5.0
# After a batch that emptied the source, wait this long before polling again, so that under a stream
# of events each batch contains many. A fan-out dirties one database page per follower, and a batch
# writes each page once however many of its posts reach that timeline. The pause adds at most this
# long to an event's wait before it is applied.
GATHER_SECONDS = 0.1

ApplyBatch = Callable[[AsyncConnection, list[Event]], Awaitable[None]]


class ConsumerLease:
    """Exclusive right to consume one source, renewed while held and free again once it expires."""

    def __init__(self, *, engine: AsyncEngine, leases: Table, name: str, holder: str | None = None) -> None:
        self.engine = engine
        self.leases = leases
        self.name = name
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"

    async def try_acquire(self) -> bool:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=LEASE_SECONDS)
        async with transaction(self.engine) as connection:
            updated = await connection.execute(
                update(self.leases)
                .where(
                    self.leases.c.name == self.name,
                    or_(self.leases.c.holder == self.holder, self.leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            if updated.rowcount == 1:
                return True
            existing = await connection.scalar(select(self.leases.c.name).where(self.leases.c.name == self.name))
            if existing is not None:
                return False
            await connection.execute(
                self.leases.insert().values(name=self.name, holder=self.holder, expires_at=expires)
            )
            return True

    async def confirm(self, connection: AsyncConnection) -> bool:
        """Renew the lease inside the caller's transaction; False when another holder took it.

        Run as the first statement of a batch's transaction, it fences out a holder
        whose lease lapsed or was taken over: its batch rolls back instead of
        committing alongside the new holder's.
        """
        renewed = await connection.execute(
            self.leases.update()
            .where(self.leases.c.name == self.name, self.leases.c.holder == self.holder)
            .values(expires_at=datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS))
        )
        return renewed.rowcount == 1

    async def release(self) -> None:
        async with transaction(self.engine) as connection:
            await connection.execute(
                self.leases.delete().where(self.leases.c.name == self.name, self.leases.c.holder == self.holder)
            )


async def read_cursor(connection: AsyncConnection, cursors: Table, source: str) -> int:
    position = await connection.scalar(select(cursors.c.position).where(cursors.c.source == source))
    return int(position or 0)


async def write_cursor(connection: AsyncConnection, cursors: Table, source: str, position: int) -> None:
    updated = await connection.execute(
        cursors.update().where(cursors.c.source == source).values(position=position)
    )
    if updated.rowcount == 0:
        await connection.execute(cursors.insert().values(source=source, position=position))


class LeaseLost(Exception):
    """Another holder took the consumer lease; the batch in progress was rolled back."""


class OutboxConsumer:
    """Follow one source's ``/internal/events`` and apply batches until cancelled."""

    def __init__(
        self,
        *,
        source: str,
        client: InternalClient,
        engine: AsyncEngine,
        cursors: Table,
        leases: Table,
        apply: ApplyBatch,
        batch_size: int = 500,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.source = source
        self.client = client
        self.engine = engine
        self.cursors = cursors
        self.apply = apply
        self.batch_size = batch_size
        self.gather_seconds = gather_seconds
        self.lease = ConsumerLease(engine=engine, leases=leases, name=f"consume:{source}")
        self.caught_up = asyncio.Event()
        self.on_batch_applied: Callable[[], Awaitable[None]] | None = None

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                if not await self.lease.try_acquire():
                    await asyncio.sleep(LEASE_SECONDS / 3)
                    continue
                await self.consume_until_lease_due()
                failures = 0
            except asyncio.CancelledError:
                raise
            except ServiceError as error:
                failures += 1
                delay = random.uniform(0.5, 1.0) * min(RETRY_CAP_SECONDS, 0.2 * 2**failures)
                log.warning("consumer.failed", source=self.source, error=error.message, retry_in_seconds=round(delay, 2))
                await asyncio.sleep(delay)
            except Exception:
                failures += 1
                delay = min(RETRY_CAP_SECONDS, 0.2 * 2**failures)
                log.exception("consumer.crashed", source=self.source, retry_in_seconds=delay)
                await asyncio.sleep(delay)

    async def consume_until_lease_due(self) -> None:
        """Apply batches for about a third of the lease time, then return so the lease is renewed."""
        renew_at = time.monotonic() + LEASE_SECONDS / 3
        async with transaction(self.engine) as connection:
            position = await read_cursor(connection, self.cursors, self.source)
        while time.monotonic() < renew_at:
            wait_ms = int(max(0.0, min(LONG_POLL_MS / 1000, renew_at - time.monotonic())) * 1000)
            if not self.caught_up.is_set():
                wait_ms = 0
            answer = await self.client.request(
                "GET",
                "/internal/events",
                params={"after": position, "limit": self.batch_size, "wait_ms": wait_ms},
                timeout_seconds=wait_ms / 1000 + LONG_POLL_MARGIN_SECONDS,
            )
            events = [Event(e["position"], e["kind"], e["payload"]) for e in answer["events"]]
            if not events:
                if not self.caught_up.is_set():
                    log.info("consumer.caught_up", source=self.source, position=position)
                self.caught_up.set()
                continue
            try:
                async with transaction(self.engine) as connection:
                    if not await self.lease.confirm(connection):
                        raise LeaseLost(self.lease.name)
                    await self.apply(connection, events)
                    position = events[-1].position
                    await write_cursor(connection, self.cursors, self.source, position)
            except LeaseLost:
                log.warning("consumer.lease_lost", source=self.source, action="batch rolled back; will try to take the lease again")
                self.caught_up.clear()
                return
            if self.on_batch_applied is not None:
                await self.on_batch_applied()
            log.debug("consumer.applied", source=self.source, events=len(events), position=position)
            if position >= answer["head"]:
                self.caught_up.set()
                await asyncio.sleep(self.gather_seconds)
