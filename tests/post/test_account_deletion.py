"""An account deletion, consumed from the account outbox, removes everything the account left."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster


async def test_deleted_account_leaves_no_statuses_or_counts(cluster: Cluster) -> None:
    victim = await cluster.new_account("victim")
    other = await cluster.new_account("other")
    victim_name = await cluster.username(victim)

    others_status = await cluster.post(other, "theirs")
    own = await cluster.post(victim, "mine")
    own_reply = await cluster.post(victim, "reply", in_reply_to_id=others_status["id"])
    victims_reblog = await cluster.reblog(victim, others_status["id"])
    await cluster.posts.post(f"/internal/statuses/{others_status['id']}/favourite", {"account_id": victim})
    others_reblog = await cluster.reblog(other, own["id"])
    reply_to_victim = await cluster.post(other, "answer", in_reply_to_id=own["id"])
    mentioning = await cluster.post(other, f"hello @{victim_name}")
    assert mentioning["mentions"] == [{"id": victim, "username": victim_name}]
    head = (await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]

    await cluster.delete_account(victim)
    await cluster.settled()

    for gone in (own, own_reply, victims_reblog, others_reblog):
        await cluster.status(gone["id"], expect=404)
    survivor = await cluster.status(others_status["id"], viewer_id=victim)
    assert (survivor["replies_count"], survivor["reblogs_count"], survivor["favourites_count"]) == (0, 0, 0)
    assert (survivor["favourited"], survivor["reblogged"]) == (False, False)
    assert (await cluster.status(reply_to_victim["id"]))["in_reply_to_id"] == own["id"]
    assert (await cluster.status(mentioning["id"]))["mentions"] == []
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": f"{victim},{other}"})
    assert stats[victim] == {"statuses_count": 0, "last_status_at": None}
    assert stats[other]["statuses_count"] == 3  # "theirs", "answer" and "hello" remain; the reblog of a deleted status was removed

    events = (await cluster.posts.get("/internal/events", params={"after": head, "limit": 100}))["events"]
    deleted = sorted(e["payload"]["id"] for e in events if e["kind"] == "status.deleted")
    assert deleted == sorted(s["id"] for s in (own, own_reply, victims_reblog, others_reblog))


async def test_account_deletion_replayed_changes_nothing(cluster: Cluster) -> None:
    from twitter_post.events import apply_account_events  # noqa: PLC0415
    from twitter_shared.database import create_engine, dispose, transaction  # noqa: PLC0415
    from twitter_shared.outbox import Event  # noqa: PLC0415

    victim = await cluster.new_account()
    other = await cluster.new_account()
    kept = await cluster.post(other, "kept")
    await cluster.delete_account(victim)
    await cluster.settled()
    head = (await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]

    engine = create_engine(cluster.urls["post"])
    try:
        async with transaction(engine) as connection:
            await apply_account_events(connection, [Event(1, "account.deleted", {"account_id": victim})])
    finally:
        await dispose(engine)
    assert (await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"] == head
    assert (await cluster.status(kept["id"]))["text"] == "kept"


async def test_delete_account_command_by_username(cluster: Cluster) -> None:
    from twitter_shared.errors import NotFound  # noqa: PLC0415
    from twitter_tools.accounts import delete_account  # noqa: PLC0415

    leaving = await cluster.new_account("cli")
    status = await cluster.post(leaving, "bye")
    username = await cluster.username(leaving)

    assert await delete_account(cluster.settings(), f"@{username}") == leaving
    await cluster.settled()
    await cluster.status(status["id"], expect=404)
    await cluster.accounts.get(f"/internal/accounts/{leaving}", expect=404)
    with pytest.raises(NotFound):
        await delete_account(cluster.settings(), username)
