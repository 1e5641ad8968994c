"""``GET /internal/timelines?owner_ids=``: the same page of several home timelines in one call."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster


async def test_pages_match_single_calls(cluster: Cluster) -> None:
    alice, bob, carol = [await cluster.new_account(name) for name in ("alice", "bob", "carol")]
    await cluster.follow(alice, bob)
    posted = {alice: [], bob: []}
    for number in range(4):
        posted[bob].append((await cluster.post(bob, f"bob {number}"))["id"])
        posted[alice].append((await cluster.post(alice, f"alice {number}"))["id"])
    await cluster.settled()
    owners = [alice, bob, carol, alice]
    newest_first = sorted(posted[alice] + posted[bob], key=int, reverse=True)

    first_pages = await cluster.timelines.get("/internal/timelines", params={"owner_ids": ",".join(owners), "limit": 3})
    assert first_pages["pages"] == [newest_first[:3], posted[bob][::-1][:3], [], newest_first[:3]]

    for params in ({"limit": 3}, {"limit": 2, "max_id": (await cluster.home(alice))[1]}, {"min_id": (await cluster.home(alice))[-1]}):
        answer = await cluster.timelines.get("/internal/timelines", params={"owner_ids": ",".join(owners), **params})

        assert answer["pages"] == [await cluster.home(owner, **params) for owner in owners]
    assert (await cluster.timelines.get("/internal/timelines", params={"owner_ids": carol}))["pages"] == [[]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"owner_ids": "1,x"}, "owner_ids must be a numeric id"),
        ({"owner_ids": ",".join(["1"] * 201)}, "at most 200 ids per request"),
        ({"owner_ids": "1", "limit": "0"}, "limit must be a positive integer"),
        ({"owner_ids": "1", "max_id": "abc"}, "max_id must be a numeric id"),
    ],
    ids=["bad-owner", "too-many-owners", "bad-limit", "bad-cursor"],
)
async def test_pages_reject_malformed_request(cluster: Cluster, params: dict, message: str) -> None:
    answer = await cluster.timelines.get("/internal/timelines", params=params, expect=422)

    assert answer == {"error": message}


@pytest.mark.parametrize("params", [{}, {"owner_ids": ""}, {"owner_ids": ","}], ids=["missing", "empty", "only-commas"])
async def test_pages_need_owner_ids(cluster: Cluster, params: dict) -> None:
    answer = await cluster.timelines.get("/internal/timelines", params=params, expect=422)

    assert answer == {"error": "owner_ids is required: a comma-separated list of account ids"}
