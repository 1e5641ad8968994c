"""An account's statuses paged with max_id, since_id and min_id: every status once, in order."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster

STATUS_COUNT = 250
PAGE = 40


@pytest.fixture(scope="module")
async def author_with_statuses(cluster: Cluster) -> tuple[str, list[str]]:
    """An author with 250 statuses; returns its id and the status ids, newest first."""
    author = await cluster.new_account("writer")
    ids = [(await cluster.post(author, f"status {n}"))["id"] for n in range(STATUS_COUNT)]
    return author, list(reversed(ids))


async def page(cluster: Cluster, author: str, **params: object) -> list[str]:
    statuses = await cluster.posts.get(f"/internal/accounts/{author}/statuses", params={"limit": PAGE, **params})
    return [status["id"] for status in statuses]


async def test_walk_backwards_with_max_id(cluster: Cluster, author_with_statuses: tuple[str, list[str]]) -> None:
    author, newest_first = author_with_statuses
    seen: list[str] = []
    max_id = None
    while batch := await page(cluster, author, max_id=max_id):
        assert len(batch) <= PAGE
        seen += batch
        max_id = batch[-1]
    assert seen == newest_first


async def test_walk_forwards_with_min_id(cluster: Cluster, author_with_statuses: tuple[str, list[str]]) -> None:
    author, newest_first = author_with_statuses
    oldest_first = list(reversed(newest_first))
    seen: list[str] = []
    min_id = "0"
    while batch := await page(cluster, author, min_id=min_id):
        assert batch == sorted(batch, key=int, reverse=True)  # each page is newest first
        seen += reversed(batch)
        min_id = batch[0]
    assert seen == oldest_first


async def test_since_id_returns_newest_above_bound(cluster: Cluster, author_with_statuses: tuple[str, list[str]]) -> None:
    author, newest_first = author_with_statuses
    bound = newest_first[100]
    assert await page(cluster, author, since_id=bound) == newest_first[:PAGE]
    assert await page(cluster, author, since_id=newest_first[3]) == newest_first[:3]


async def test_limit_defaults_to_20_and_clamps_at_40(cluster: Cluster, author_with_statuses: tuple[str, list[str]]) -> None:
    author, newest_first = author_with_statuses
    default = await cluster.posts.get(f"/internal/accounts/{author}/statuses")
    assert [s["id"] for s in default] == newest_first[:20]
    assert await page(cluster, author, limit=1000) == newest_first[:40]
    await cluster.posts.get(f"/internal/accounts/{author}/statuses", params={"limit": 0}, expect=422)
    await cluster.posts.get(f"/internal/accounts/{author}/statuses", params={"max_id": "x"}, expect=422)


async def test_walk_survives_deletions_between_pages(cluster: Cluster) -> None:
    author = await cluster.new_account("deleter")
    ids = [(await cluster.post(author, f"status {n}"))["id"] for n in range(100)]
    newest_first = list(reversed(ids))

    first = await page(cluster, author, limit=10)
    assert first == newest_first[:10]
    # The cursor itself and the next statuses disappear before the next page is asked for.
    doomed = {newest_first[9], newest_first[10], newest_first[11], newest_first[30]}
    for status_id in doomed:
        await cluster.delete_status(author, status_id)
    seen = list(first)
    max_id = first[-1]
    while batch := await page(cluster, author, max_id=max_id, limit=10):
        seen += batch
        max_id = batch[-1]
    assert seen == newest_first[:10] + [i for i in newest_first[10:] if i not in doomed]

    forwards: list[str] = []
    min_id = newest_first[-1]  # the oldest, then delete it: a cursor at a deleted status still works
    await cluster.delete_status(author, min_id)
    while batch := await page(cluster, author, min_id=min_id, limit=10):
        forwards += reversed(batch)
        min_id = batch[0]
    assert forwards == [i for i in reversed(newest_first[:-1]) if i not in doomed]


async def test_filters_of_account_statuses(cluster: Cluster) -> None:
    author = await cluster.new_account()
    other = await cluster.new_account()
    foreign = await cluster.post(other, "theirs")
    plain = await cluster.post(author, "plain")
    self_reply = await cluster.post(author, "thread", in_reply_to_id=plain["id"])
    reply = await cluster.post(author, "reply", in_reply_to_id=foreign["id"])
    shared = await cluster.reblog(author, foreign["id"])

    assert await page(cluster, author) == [shared["id"], reply["id"], self_reply["id"], plain["id"]]
    assert await page(cluster, author, exclude_replies="true") == [shared["id"], self_reply["id"], plain["id"]]
    assert await page(cluster, author, exclude_reblogs="true") == [reply["id"], self_reply["id"], plain["id"]]
    assert await page(cluster, author, pinned="true") == []
    assert await page(cluster, author, only_media="true") == []
