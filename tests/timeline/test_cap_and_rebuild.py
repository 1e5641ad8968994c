"""The per-owner cap, and rebuild-timelines producing what live fan-out produced."""

from __future__ import annotations

from sqlalchemy import select

from tests.post.cluster import Cluster
from twitter_shared.database import create_engine, dispose
from twitter_timeline.tables import follow_mirror, home_entries
from twitter_tools.rebuild import rebuild_with_settings

CAP = 20


async def rows_of(url: str, owners: list[str]) -> tuple[list[tuple], list[tuple]]:
    """Return the home entries and mirror rows that concern ``owners``, sorted."""
    engine = create_engine(url)
    ids = [int(owner) for owner in owners]
    try:
        async with engine.connect() as connection:
            entries = (await connection.execute(
                select(home_entries).where(home_entries.c.owner_id.in_(ids)).order_by(home_entries.c.owner_id, home_entries.c.status_id)
            )).all()
            mirror = (await connection.execute(
                select(follow_mirror).where(follow_mirror.c.follower_id.in_(ids)).order_by(follow_mirror.c.follower_id, follow_mirror.c.followee_id)
            )).all()
    finally:
        await dispose(engine)
    return [tuple(row) for row in entries], [tuple(row) for row in mirror]


async def test_cap_keeps_newest_entries(cluster: Cluster) -> None:
    capped, _ = await cluster.extra_timeline(cap=CAP)
    author = await cluster.new_account()
    follower = await cluster.new_account()
    before_follow = [(await cluster.post(author, f"old {n}"))["id"] for n in range(CAP + 5)]
    # Posts fanned out after the follow would reach the follower past the cap, until the next trim.
    await cluster.settled(timelines=capped)
    await cluster.follow(follower, author)
    await cluster.settled(timelines=capped)
    # The follow merges only the author's newest CAP statuses.
    assert await cluster.whole_home(follower, timelines=capped) == list(reversed(before_follow))[:CAP]

    after_follow = [(await cluster.post(author, f"new {n}"))["id"] for n in range(10)]
    await cluster.settled(timelines=capped)
    assert len(await cluster.whole_home(follower, timelines=capped)) == CAP + 10

    removed = await capped.post("/internal/timelines/trim")
    assert removed["removed"] >= 10 + 15  # the follower's and the author's surplus at least
    newest = list(reversed(before_follow + after_follow))[:CAP]
    assert await cluster.whole_home(follower, timelines=capped) == newest
    assert await cluster.whole_home(author, timelines=capped) == newest
    assert (await capped.post("/internal/timelines/trim"))["removed"] == 0


async def test_rebuild_equals_live_fanout(cluster: Cluster) -> None:
    capped, url = await cluster.extra_timeline(cap=CAP)
    people = [await cluster.new_account("pop") for _ in range(6)]
    a, b, c, d, e, f = people
    # Each follow comes before its followee has CAP statuses, so every merge is complete.
    for follower, followee in [(a, b), (a, c), (b, a), (c, a), (d, a), (d, b), (e, c), (f, e)]:
        await cluster.follow(follower, followee)
    statuses: dict[str, list[str]] = {person: [] for person in people}
    for round_number in range(9):
        for author in (a, b, c, e):
            statuses[author].append((await cluster.post(author, f"{round_number}"))["id"])
    await cluster.reblog(b, statuses[c][0])
    await cluster.reblog(e, statuses[a][3])
    await cluster.unfollow(d, b)
    await cluster.follow(f, a)
    for doomed in (statuses[a][8], statuses[c][1], statuses[e][0]):
        await cluster.delete_status(doomed_author(statuses, doomed), doomed)
    await cluster.settled(timelines=capped)
    await capped.post("/internal/timelines/trim")
    live = await rows_of(url, people)
    assert any(owner == int(a) for owner, *_ in live[0])

    settings = cluster.settings(timeline_database_url=url, timeline_max_entries=CAP)
    report = await rebuild_with_settings(settings, cap=CAP)
    assert report.entries >= len(live[0])
    rebuilt = await rows_of(url, people)
    assert rebuilt == live
    counts = {owner: sum(1 for row in live[0] if row[0] == int(owner)) for owner in people}
    assert counts[a] == CAP  # the cap applied to a busy timeline

    # The running service got its leases back and goes on from the rebuild's positions.
    fresh = await cluster.post(b, "after the rebuild")
    await cluster.settled(timelines=capped)
    assert (await cluster.home(a, timelines=capped))[0] == fresh["id"]


def doomed_author(statuses: dict[str, list[str]], status_id: str) -> str:
    return next(author for author, ids in statuses.items() if status_id in ids)
