"""Reblogs: their own statuses pointing at an original, counted exactly, deleted with it."""

from __future__ import annotations

from tests.post.cluster import Cluster
from twitter_post.store import ALREADY_REBLOGGED


async def events_after(cluster: Cluster, position: int) -> list[dict]:
    answer = await cluster.posts.get("/internal/events", params={"after": position, "limit": 1000})
    return answer["events"]


async def post_head(cluster: Cluster) -> int:
    return (await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]


async def test_reblog_wraps_the_original(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "share me")
    head = await post_head(cluster)

    shared = await cluster.reblog(sharer, original["id"])
    assert shared["id"] != original["id"]
    assert shared["account_id"] == sharer
    assert shared["text"] == ""
    assert shared["reblog_of_id"] == original["id"]
    assert shared["reblog"]["id"] == original["id"]
    assert shared["reblog"]["reblogs_count"] == 1
    assert shared["reblog"]["reblogged"] is True
    assert shared["reblogged"] is True
    assert [e["payload"] for e in await events_after(cluster, head)] == [
        {"id": shared["id"], "account_id": sharer, "reblog_of_id": original["id"]}
    ]


async def test_reblog_of_reblog_reblogs_original(cluster: Cluster) -> None:
    author = await cluster.new_account()
    first = await cluster.new_account()
    second = await cluster.new_account()
    original = await cluster.post(author, "chain")
    shared = await cluster.reblog(first, original["id"])
    again = await cluster.reblog(second, shared["id"])
    assert again["reblog_of_id"] == original["id"]
    assert (await cluster.status(original["id"]))["reblogs_count"] == 2


async def test_reblog_twice_is_rejected(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "once")
    await cluster.reblog(sharer, original["id"])
    answer = await cluster.reblog(sharer, original["id"], expect=422)
    assert answer == {"error": ALREADY_REBLOGGED}
    assert (await cluster.status(original["id"]))["reblogs_count"] == 1


async def test_reblog_of_direct_message_is_forbidden(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    secret = await cluster.post(author, "psst", visibility="direct")
    await cluster.reblog(sharer, secret["id"], expect=403)
    await cluster.reblog(sharer, "42", expect=404)


async def test_viewer_flags_follow_the_original(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    viewer = await cluster.new_account()
    original = await cluster.post(author, "flags")
    shared = await cluster.reblog(sharer, original["id"])
    await cluster.posts.post(f"/internal/statuses/{shared['id']}/favourite", {"account_id": viewer})

    seen = await cluster.status(shared["id"], viewer_id=viewer)
    assert seen["favourited"] is True
    assert seen["reblogged"] is False
    assert seen["reblog"]["favourited"] is True
    assert seen["reblog"]["favourites_count"] == 1
    by_sharer = await cluster.status(original["id"], viewer_id=sharer)
    assert by_sharer["reblogged"] is True
    assert by_sharer["favourited"] is False


async def test_unreblog_deletes_the_reblog(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "take it back")
    shared = await cluster.reblog(sharer, original["id"])
    head = await post_head(cluster)

    undone = await cluster.posts.post(f"/internal/statuses/{original['id']}/unreblog", {"account_id": sharer})
    assert undone["id"] == original["id"]
    assert undone["reblogged"] is False
    assert undone["reblogs_count"] == 0
    await cluster.status(shared["id"], expect=404)
    assert [e["payload"] for e in await events_after(cluster, head)] == [{"id": shared["id"], "account_id": sharer}]

    again = await cluster.posts.post(f"/internal/statuses/{original['id']}/unreblog", {"account_id": sharer})
    assert again["reblogs_count"] == 0
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": sharer})
    assert stats[sharer]["statuses_count"] == 0


async def test_deleting_original_deletes_its_reblogs(cluster: Cluster) -> None:
    author = await cluster.new_account()
    fans = [await cluster.new_account() for _ in range(3)]
    original = await cluster.post(author, "cascade")
    reblogs = [await cluster.reblog(fan, original["id"]) for fan in fans]
    await cluster.posts.post(f"/internal/statuses/{original['id']}/favourite", {"account_id": fans[0]})
    head = await post_head(cluster)

    await cluster.delete_status(author, original["id"])
    for shared in reblogs:
        await cluster.status(shared["id"], expect=404)
    deleted = sorted((e["kind"], e["payload"]["id"], e["payload"]["account_id"]) for e in await events_after(cluster, head))
    expected = sorted(
        [("status.deleted", original["id"], author)] + [("status.deleted", s["id"], s["account_id"]) for s in reblogs]
    )
    assert deleted == expected
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": ",".join([author, *fans])})
    assert [stats[account]["statuses_count"] for account in [author, *fans]] == [0, 0, 0, 0]


async def test_deleting_a_reblog_decrements_the_original(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "count")
    shared = await cluster.reblog(sharer, original["id"])
    await cluster.delete_status(author, shared["id"], expect=403)
    deleted = await cluster.delete_status(sharer, shared["id"])
    assert deleted["reblog"]["id"] == original["id"]
    assert (await cluster.status(original["id"]))["reblogs_count"] == 0
