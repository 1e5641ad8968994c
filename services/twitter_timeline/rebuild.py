"""Regenerate every home timeline and the follow mirror from the account and post services.

The result equals what live fan-out produces once trimmed: each owner gets its
own statuses and those of the accounts it follows (reblogs included), newest
``cap`` kept. The steps:

1. Take both consumer leases over, so a running timeline service stops applying
   events (its next batch fails the lease check and rolls back), and keep them
   renewed while the rebuild runs.
2. Note both outboxes' heads, then read every follow and every status. The
   consumers later replay whatever happened after the noted heads. Every event
   applies idempotently, so replaying one that the snapshot already shows
   changes nothing.
3. Replace the mirror and the timelines and set both cursors to the noted heads
   in one transaction, so a failed rebuild leaves the old timelines in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain

import structlog
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared.client import InternalClient
from twitter_shared.consumer import LEASE_SECONDS, ConsumerLease, write_cursor
from twitter_shared.database import transaction
from twitter_shared.errors import ServiceError
from twitter_shared.outbox import BEYOND_ANY_POSITION
from twitter_shared.settings import ServiceName
from twitter_timeline.store import Entry, StatusRef, insert_entries
from twitter_timeline.tables import consumer_cursors, consumer_leases, follow_mirror, home_entries

log = structlog.get_logger()

PAGE_SIZE = 5000
INSERT_CHUNK = 5000
# One progress line per 50,000 entries written.
PROGRESS_EVERY_CHUNKS = 10
SOURCES = (ServiceName.ACCOUNT, ServiceName.POST)

ProgressReport = Callable[[str, int, int | None], None]


class RebuildFailed(Exception):
    """The rebuild stopped; the timelines are as they were before it started."""


@dataclass(frozen=True)
class RebuildReport:
    follows: int
    statuses: int
    owners: int
    entries: int
    account_position: int
    post_position: int


def log_progress(stage: str, done: int, total: int | None) -> None:
    log.info("rebuild.progress", stage=stage, done=done, total=total)


async def rebuild_timelines(
    *,
    engine: AsyncEngine,
    accounts: InternalClient,
    posts: InternalClient,
    cap: int,
    progress: ProgressReport = log_progress,
) -> RebuildReport:
    """Rebuild everything while holding both consumer leases; see the module docstring for the steps."""
    holder = f"rebuild:{socket.gethostname()}:{os.getpid()}"
    async with _held_leases(engine, holder=holder) as leases:
        heads = {source: await _outbox_head(client) for source, client in ((ServiceName.ACCOUNT, accounts), (ServiceName.POST, posts))}
        log.info("rebuild.started", account_head=heads[ServiceName.ACCOUNT], post_head=heads[ServiceName.POST], cap=cap)

        follows = await _read_follows(accounts, progress)
        recent_by_author, status_count = await _read_recent_statuses(posts, cap=cap, progress=progress)
        entries = list(_timeline_entries(follows, recent_by_author, cap=cap))
        owners = len({entry.owner_id for entry in entries})

        async with transaction(engine) as connection:
            for lease in leases:
                if not await lease.confirm(connection):
                    raise RebuildFailed(f"lost the consumer lease {lease.name!r} to another process; run the rebuild again")
            await connection.execute(delete(home_entries))
            await connection.execute(delete(follow_mirror))
            mirror_rows = [{"follower_id": f, "followee_id": e} for f, e in follows]
            for start in range(0, len(mirror_rows), INSERT_CHUNK):
                await connection.execute(insert(follow_mirror), mirror_rows[start : start + INSERT_CHUNK])
            for chunk_number, start in enumerate(range(0, len(entries), INSERT_CHUNK), start=1):
                await insert_entries(connection, entries[start : start + INSERT_CHUNK])
                written = min(start + INSERT_CHUNK, len(entries))
                if chunk_number % PROGRESS_EVERY_CHUNKS == 0 or written == len(entries):
                    progress("writing timelines", written, len(entries))
            for source in SOURCES:
                await write_cursor(connection, consumer_cursors, source, heads[source])

    report = RebuildReport(
        follows=len(follows),
        statuses=status_count,
        owners=owners,
        entries=len(entries),
        account_position=heads[ServiceName.ACCOUNT],
        post_position=heads[ServiceName.POST],
    )
    log.info("rebuild.finished", **report.__dict__)
    return report


@contextlib.asynccontextmanager
async def _held_leases(engine: AsyncEngine, *, holder: str) -> AsyncIterator[list[ConsumerLease]]:
    leases = [ConsumerLease(engine=engine, leases=consumer_leases, name=f"consume:{source}", holder=holder) for source in SOURCES]
    for lease in leases:
        await _take_over(engine, lease)
    renewal = asyncio.create_task(_keep_renewing(leases))
    try:
        yield leases
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        for lease in leases:
            await lease.release()


async def _take_over(engine: AsyncEngine, lease: ConsumerLease) -> None:
    """Claim the lease from any current holder, whose next batch then fails its lease check."""
    expires = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)
    async with transaction(engine) as connection:
        taken = await connection.execute(
            consumer_leases.update().where(consumer_leases.c.name == lease.name).values(holder=lease.holder, expires_at=expires)
        )
        if taken.rowcount == 0:
            await connection.execute(insert(consumer_leases).values(name=lease.name, holder=lease.holder, expires_at=expires))
    log.info("rebuild.lease_taken", lease=lease.name)


async def _keep_renewing(leases: list[ConsumerLease]) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        for lease in leases:
            try:
                still_ours = await lease.try_acquire()
            except ServiceError as error:
                log.warning("rebuild.lease_renewal_failed", lease=lease.name, error=error.message, retry_in_seconds=LEASE_SECONDS / 3)
                continue
            if not still_ours:
                log.error("rebuild.lease_lost", lease=lease.name, action="the rebuild will fail at its final check")


async def _outbox_head(client: InternalClient) -> int:
    answer = await client.get("/internal/events", params={"after": BEYOND_ANY_POSITION, "limit": 1})
    return int(answer["head"])


async def _read_follows(accounts: InternalClient, progress: ProgressReport) -> list[tuple[int, int]]:
    """Read every follow as ``(follower_id, followee_id)``, paging by follow id."""
    follows: list[tuple[int, int]] = []
    after = 0
    while True:
        page = await accounts.get("/internal/follows", params={"after_id": after, "limit": PAGE_SIZE})
        if not page:
            return follows
        follows += [(int(row["follower_id"]), int(row["followee_id"])) for row in page]
        after = int(page[-1]["id"])
        progress("reading follows", len(follows), None)


async def _read_recent_statuses(
    posts: InternalClient, *, cap: int, progress: ProgressReport
) -> tuple[dict[int, deque[StatusRef]], int]:
    """Read every status in id order, keeping each author's newest ``cap``: no timeline shows older ones."""
    recent: dict[int, deque[StatusRef]] = defaultdict(lambda: deque(maxlen=cap))
    count = 0
    after = 0
    while True:
        page = await posts.get("/internal/status-refs", params={"after_id": after, "limit": PAGE_SIZE})
        if not page:
            return recent, count
        for row in page:
            ref = StatusRef.from_json(row)
            recent[ref.author_id].append(ref)
        count += len(page)
        after = int(page[-1]["id"])
        progress("reading statuses", count, None)


def _timeline_entries(
    follows: list[tuple[int, int]], recent_by_author: dict[int, deque[StatusRef]], *, cap: int
) -> Iterator[Entry]:
    """Yield each owner's newest ``cap`` entries from its own statuses and its followees'."""
    followees: dict[int, list[int]] = defaultdict(list)
    for follower_id, followee_id in follows:
        followees[follower_id].append(followee_id)
    owners = set(followees) | set(recent_by_author)
    for owner_id in sorted(owners):
        sources = [recent_by_author.get(author, ()) for author in (owner_id, *followees.get(owner_id, ()))]
        newest = heapq.nlargest(cap, chain.from_iterable(sources), key=lambda ref: ref.status_id)
        for ref in newest:
            yield Entry(owner_id, ref.status_id, ref.author_id, ref.reblog_of_id)
