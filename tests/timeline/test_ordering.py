"""Events of the two outboxes applied in either order end in the same, right timelines.

The account and post outboxes are consumed independently, so the timeline may
apply a follow before or after a post that happened the other way round. Here
the events are read from the real outboxes and applied to a fresh timeline
database once with all account events first and once with all post events
first. Every scenario must end the same both ways.
"""

from __future__ import annotations

import pytest

from tests.post.cluster import SERVICE_TOKEN, Cluster, new_database
from twitter_shared.client import CircuitBreaker, InternalClient
from twitter_shared.database import create_engine, dispose, transaction
from twitter_shared.internal_http import ConnectionPool
from twitter_shared.migrate import upgrade
from twitter_shared.outbox import Event
from twitter_shared.pagination import PageRequest
from twitter_timeline import store
from twitter_timeline.events import TimelineEvents


async def outbox_head(client) -> int:  # noqa: ANN001
    return (await client.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]


async def events_since(client, position: int) -> list[Event]:  # noqa: ANN001
    answer = await client.get("/internal/events", params={"after": position, "limit": 1000})
    return [Event(e["position"], e["kind"], e["payload"]) for e in answer["events"]]


@pytest.mark.parametrize("account_first", [True, False], ids=["account-events-first", "post-events-first"])
async def test_either_outbox_order_ends_right(cluster: Cluster, account_first: bool) -> None:
    account_head = await outbox_head(cluster.accounts)
    post_head = await outbox_head(cluster.posts)
    names = ["author", "follows_then_sees", "sees_then_follows", "follows_and_leaves", "sees_deleted"]
    people = {name: await cluster.new_account(name[:10]) for name in names}
    author = people["author"]

    await cluster.follow(people["follows_then_sees"], author)
    kept = await cluster.post(author, "kept")
    await cluster.follow(people["sees_then_follows"], author)
    await cluster.follow(people["follows_and_leaves"], author)
    await cluster.follow(people["sees_deleted"], author)
    deleted = await cluster.post(author, "deleted")
    await cluster.unfollow(people["follows_and_leaves"], author)
    await cluster.delete_status(author, deleted["id"])
    await cluster.settled()  # the post service has applied every account event by now

    account_events = await events_since(cluster.accounts, account_head)
    post_events = await events_since(cluster.posts, post_head)
    url = await new_database(cluster.postgres, cluster.folder, f"{cluster.prefix}_order_{int(account_first)}")
    await upgrade(url, history="timeline")
    engine = create_engine(url)
    pool = ConnectionPool(cluster.posts.base_url)
    posts = InternalClient(
        service="post",
        token=SERVICE_TOKEN,
        timeout_seconds=5,
        retries=0,
        breaker=CircuitBreaker(failures_to_open=5, reset_seconds=1),
        pool=pool,
    )
    handlers = TimelineEvents(posts=posts, cap=300)
    steps = [(handlers.apply_account_events, account_events), (handlers.apply_post_events, post_events)]
    if not account_first:
        steps.reverse()
    try:
        for apply, events in steps:
            async with transaction(engine) as connection:
                await apply(connection, events)
        homes = {
            name: await store.timeline_page(engine, int(account_id), page=PageRequest(limit=40))
            for name, account_id in people.items()
        }
    finally:
        await pool.close()
        await dispose(engine)

    assert homes == {
        "author": [kept["id"]],
        "follows_then_sees": [kept["id"]],
        "sees_then_follows": [kept["id"]],
        "follows_and_leaves": [],
        "sees_deleted": [kept["id"]],
    }
