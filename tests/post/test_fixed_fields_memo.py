"""The post service keeps each status's fixed fields, and still renders counts, deletions and mentions as they are now."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster
from twitter_post import entities


async def statuses(cluster: Cluster, *status_ids: str, viewer_id: str | None = None) -> list[dict]:
    params = {"ids": ",".join(status_ids), **({"viewer_id": viewer_id} if viewer_id else {})}
    return await cluster.posts.get("/internal/statuses", params=params)


async def test_counts_change_after_the_first_read(cluster: Cluster) -> None:
    author, fan = await cluster.new_account(), await cluster.new_account()
    status = await cluster.post(author, "counted")
    [before] = await statuses(cluster, status["id"], viewer_id=fan)

    await cluster.posts.post(f"/internal/statuses/{status['id']}/favourite", {"account_id": fan})
    await cluster.reblog(fan, status["id"])
    [after] = await statuses(cluster, status["id"], viewer_id=fan)

    assert (before["favourites_count"], before["reblogs_count"], before["favourited"]) == (0, 0, False)
    assert (after["favourites_count"], after["reblogs_count"], after["favourited"], after["reblogged"]) == (1, 1, True, True)
    assert {key: after[key] for key in entities.FIXED_FIELDS} == {key: before[key] for key in entities.FIXED_FIELDS}


async def test_deleted_status_is_not_rendered_from_memory(cluster: Cluster) -> None:
    author = await cluster.new_account()
    kept, deleted = await cluster.post(author, "kept"), await cluster.post(author, "deleted")
    assert len(await statuses(cluster, kept["id"], deleted["id"])) == 2

    await cluster.delete_status(author, deleted["id"])

    assert [status["id"] for status in await statuses(cluster, kept["id"], deleted["id"])] == [kept["id"]]
    assert (await cluster.status(deleted["id"], expect=404)) is not None


async def test_mention_of_deleted_account_goes(cluster: Cluster) -> None:
    author, mentioned = await cluster.new_account(), await cluster.new_account("gone")
    name = await cluster.username(mentioned)
    status = await cluster.post(author, f"hello @{name}")
    [before] = await statuses(cluster, status["id"])

    await cluster.delete_account(mentioned)
    await cluster.settled()
    [after] = await statuses(cluster, status["id"])

    assert [mention["id"] for mention in before["mentions"]] == [mentioned]
    assert after["mentions"] == []
    assert after["text"] == before["text"]


async def test_memo_empties_at_its_bound(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entities, "_FIXED_FIELDS", {})
    monkeypatch.setattr(entities, "MAX_KEPT_STATUSES", 2)
    author = await cluster.new_account()
    posted = [await cluster.post(author, f"status {n}") for n in range(3)]

    for status in posted:
        [read] = await statuses(cluster, status["id"])
        assert read["text"] == status["text"]
    rendered = await statuses(cluster, *(status["id"] for status in posted))

    assert set(entities._FIXED_FIELDS) == {int(posted[0]["id"]), int(posted[1]["id"])}
    assert sorted(status["text"] for status in rendered) == ["status 0", "status 1", "status 2"]
