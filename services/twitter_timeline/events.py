"""Apply the account and post outboxes to the home timelines.

The two outboxes are not ordered with respect to each other, so each event
gives the right result whichever comes first. A follow merges the followee's
statuses that exist now, and a post whose event is still on its way is fanned
out later over the mirror, which then contains the follower. An unfollow
removes what is there, and the fan-out reads the mirror as it is. Batches of
the two consumers never run side by side (``serialise_batches``), because a
post made between a merge's read of the post service and the merge's commit
would otherwise reach neither.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from twitter_shared.client import InternalClient
from twitter_shared.outbox import Event
from twitter_timeline import store
from twitter_timeline.store import StatusRef

log = structlog.get_logger()

# Followees whose recent statuses are fetched at once for a batch of follows.
PARALLEL_MERGE_READS = 16


async def let_reads_through() -> None:
    """Yield to the event loop between the events of a batch.

    On SQLite the statements run on the loop, and a batch of 500 fan-outs after a burst
    of posts held up this service's timeline reads for seconds. Reads do not need the
    writer, so they run between events while the batch's transaction stays open.
    """
    await asyncio.sleep(0)


async def recent_statuses(posts: InternalClient, account_id: int, *, limit: int) -> list[StatusRef]:
    refs = await posts.get(f"/internal/accounts/{account_id}/status-refs", params={"limit": limit})
    return [StatusRef.from_json(ref) for ref in refs]


class TimelineEvents:
    """The ``apply`` callbacks of the two consumers, with what they need to reach the post service."""

    def __init__(self, *, posts: InternalClient, cap: int) -> None:
        self.posts = posts
        self.cap = cap

    async def apply_account_events(self, connection: AsyncConnection, events: list[Event]) -> None:
        await store.serialise_batches(connection)
        recent = await self._recent_of_followees(events)
        for event in events:
            payload = event.payload
            if event.kind == "follow.created":
                followee_id = int(payload["followee_id"])
                await store.add_follow(
                    connection, follower_id=int(payload["follower_id"]), followee_id=followee_id, recent=recent[followee_id]
                )
            elif event.kind == "follow.deleted":
                await store.remove_follow(
                    connection, follower_id=int(payload["follower_id"]), followee_id=int(payload["followee_id"])
                )
            elif event.kind == "account.deleted":
                await store.remove_account(connection, int(payload["account_id"]))
            await let_reads_through()

    async def _recent_of_followees(self, events: list[Event]) -> dict[int, list[StatusRef]]:
        followees = list(dict.fromkeys(int(e.payload["followee_id"]) for e in events if e.kind == "follow.created"))
        recent: dict[int, list[StatusRef]] = {}
        for start in range(0, len(followees), PARALLEL_MERGE_READS):
            group = followees[start : start + PARALLEL_MERGE_READS]
            answers = await asyncio.gather(*(recent_statuses(self.posts, f, limit=self.cap) for f in group))
            recent.update(zip(group, answers, strict=True))
        return recent

    async def apply_post_events(self, connection: AsyncConnection, events: list[Event]) -> None:
        await store.serialise_batches(connection)
        for event in events:
            payload = event.payload
            if event.kind == "status.created":
                await store.fan_out(connection, StatusRef.from_json(payload))
            elif event.kind == "status.deleted":
                await store.remove_status(connection, status_id=int(payload["id"]), author_id=int(payload["account_id"]))
            await let_reads_through()
