"""Home timelines fed by the account and post outboxes: fan-out, merges, removals, pages."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster


async def test_post_reaches_followers_and_author(cluster: Cluster) -> None:
    author = await cluster.new_account()
    followers = [await cluster.new_account() for _ in range(3)]
    stranger = await cluster.new_account()
    for follower in followers:
        await cluster.follow(follower, author)
    status = await cluster.post(author, "fan me out")
    await cluster.settled()

    for owner in (author, *followers):
        assert await cluster.home(owner) == [status["id"]]
    assert await cluster.home(stranger) == []


async def test_follow_merges_recent_statuses(cluster: Cluster) -> None:
    author = await cluster.new_account()
    follower = await cluster.new_account()
    own = await cluster.post(follower, "mine first")
    earlier = [(await cluster.post(author, f"before {n}"))["id"] for n in range(3)]
    await cluster.follow(follower, author)
    later = await cluster.post(author, "after")
    await cluster.settled()

    assert await cluster.home(follower) == [later["id"], *reversed(earlier), own["id"]]


async def test_unfollow_removes_statuses_and_reblogs(cluster: Cluster) -> None:
    author = await cluster.new_account()
    follower = await cluster.new_account()
    third = await cluster.new_account()
    theirs = await cluster.post(third, "third party")
    await cluster.follow(follower, author)
    status = await cluster.post(author, "soon unfollowed")
    shared = await cluster.reblog(author, theirs["id"])
    own = await cluster.post(follower, "stays")
    await cluster.settled()
    assert await cluster.home(follower) == [own["id"], shared["id"], status["id"]]

    await cluster.unfollow(follower, author)
    await cluster.settled()
    assert await cluster.home(follower) == [own["id"]]
    assert await cluster.home(author) == [shared["id"], status["id"]]


async def test_deleted_status_leaves_every_timeline(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    follower = await cluster.new_account()
    await cluster.follow(follower, author)
    await cluster.follow(follower, sharer)
    status = await cluster.post(author, "regret")
    shared = await cluster.reblog(sharer, status["id"])
    await cluster.settled()
    assert await cluster.home(follower) == [shared["id"], status["id"]]

    await cluster.delete_status(author, status["id"])
    await cluster.settled()
    for owner in (author, sharer, follower):
        assert await cluster.home(owner) == []


async def test_account_deletion_removes_entries_everywhere(cluster: Cluster) -> None:
    leaving = await cluster.new_account("leaving")
    follower = await cluster.new_account()
    friend = await cluster.new_account()
    await cluster.follow(follower, leaving)
    await cluster.follow(leaving, friend)
    friend_status = await cluster.post(friend, "friend")
    await cluster.post(leaving, "goodbye")
    await cluster.reblog(leaving, friend_status["id"])
    await cluster.settled()
    assert len(await cluster.home(follower)) == 2
    assert len(await cluster.home(leaving)) == 3

    await cluster.delete_account(leaving)
    await cluster.settled()
    assert await cluster.home(follower) == []
    assert await cluster.home(leaving) == []
    assert await cluster.home(friend) == [friend_status["id"]]

    # The mirror lost the follow, so the friend's next post reaches only the friend's own timeline.
    later = await cluster.post(friend, "still here")
    await cluster.settled()
    assert await cluster.home(leaving) == []
    assert await cluster.home(friend) == [later["id"], friend_status["id"]]


async def test_timeline_catches_up_after_outage(cluster: Cluster) -> None:
    author = await cluster.new_account()
    follower = await cluster.new_account()
    late_follower = await cluster.new_account()
    await cluster.follow(follower, author)
    first = await cluster.post(author, "before the outage")
    await cluster.settled()

    await cluster.stop_timeline()
    during = [(await cluster.post(author, f"during {n}"))["id"] for n in range(5)]
    await cluster.follow(late_follower, author)
    await cluster.delete_status(author, during[2])
    gone_follower_view = await cluster.post(follower, "own post while down")
    await cluster.start_timeline()
    await cluster.settled()

    expected = [i for i in reversed(during) if i != during[2]] + [first["id"]]
    assert await cluster.home(author) == expected
    assert await cluster.home(late_follower) == expected
    assert await cluster.home(follower) == [gone_follower_view["id"], *expected]


async def test_progress_reports_cursors(cluster: Cluster) -> None:
    await cluster.post(await cluster.new_account(), "count me")
    await cluster.settled()
    progress = await cluster.timelines.get("/internal/progress")
    assert progress["caught_up"] is True
    assert progress["post"] == progress["post_head"]
    assert progress["account"] == progress["account_head"]


async def test_unknown_owner_has_empty_timeline(cluster: Cluster) -> None:
    assert await cluster.home("123456789") == []
    await cluster.timelines.get("/internal/timelines/1", params={"limit": "x"}, expect=422)


@pytest.fixture(scope="module")
async def long_timeline(cluster: Cluster) -> tuple[str, str, list[str]]:
    """A follower whose home contains 250 statuses of one author; returns both ids and the statuses, newest first."""
    author = await cluster.new_account("prolific")
    follower = await cluster.new_account("reader")
    await cluster.follow(follower, author)
    ids = [(await cluster.post(author, f"status {n}"))["id"] for n in range(250)]
    await cluster.settled()
    return author, follower, list(reversed(ids))


async def test_home_walk_backwards_and_forwards(cluster: Cluster, long_timeline: tuple[str, str, list[str]]) -> None:
    _, follower, newest_first = long_timeline
    backwards: list[str] = []
    max_id = None
    while page := await cluster.home(follower, limit=40, max_id=max_id):
        backwards += page
        max_id = page[-1]
    assert backwards == newest_first

    forwards: list[str] = []
    min_id = "0"
    while page := await cluster.home(follower, limit=40, min_id=min_id):
        forwards += reversed(page)
        min_id = page[0]
    assert forwards == list(reversed(newest_first))
    assert await cluster.home(follower) == newest_first[:20]
    assert await cluster.home(follower, since_id=newest_first[2]) == newest_first[:2]


async def test_home_walk_survives_deletions(cluster: Cluster, long_timeline: tuple[str, str, list[str]]) -> None:
    author, follower, newest_first = long_timeline
    first_page = await cluster.home(follower, limit=40)
    doomed = {first_page[-1], newest_first[40], newest_first[41], newest_first[200]}
    for status_id in doomed:
        await cluster.delete_status(author, status_id)
    await cluster.settled()

    seen = list(first_page)
    max_id = first_page[-1]
    while page := await cluster.home(follower, limit=40, max_id=max_id):
        seen += page
        max_id = page[-1]
    assert seen == newest_first[:40] + [i for i in newest_first[40:] if i not in doomed]
