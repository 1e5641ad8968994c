"""Creating, reading, favouriting and deleting statuses through the post service's internal API."""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster
from twitter_post.store import ALREADY_FAVOURITED, IDEMPOTENCY_REUSED, NOT_AUTHOR
from twitter_post.text import BLANK_MESSAGE, TOO_LONG_MESSAGE
from twitter_shared.web import NUL_MESSAGE

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one grapheme, seven code points
E_ACUTE = "e\u0301"  # one grapheme, two code points
FLAG = "\U0001f1eb\U0001f1f7"  # one grapheme, two regional indicators
LONG_URL = "https://example.com/" + "a" * 200


async def create(cluster: Cluster, body: dict, *, expect: int = 200) -> dict:
    return await cluster.posts.post("/internal/statuses", body, expect=expect)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 500,
        FAMILY * 500,
        E_ACUTE * 500,
        FLAG * 250 + "b" * 250,
        "a" * 476 + " " + LONG_URL,
        "a" * 476 + " " + LONG_URL[:25],
    ],
    ids=["ascii", "family-emoji", "combining", "flags", "long-url", "short-url"],
)
async def test_status_of_500_characters_is_accepted(cluster: Cluster, text: str) -> None:
    author = await cluster.new_account()
    answer = await create(cluster, {"account_id": author, "status": text})
    assert answer["created"] is True
    assert answer["status"]["text"] == text
    assert answer["author_stats"][str(author)]["statuses_count"] == 1


@pytest.mark.parametrize(
    "text",
    ["a" * 501, FAMILY * 501, E_ACUTE * 501, "a" * 477 + " " + LONG_URL, "a" * 477 + " https://x.io"],
    ids=["ascii", "family-emoji", "combining", "long-url", "short-url-counts-23"],
)
async def test_status_of_501_characters_is_rejected(cluster: Cluster, text: str) -> None:
    author = await cluster.new_account()
    answer = await create(cluster, {"account_id": author, "status": text}, expect=422)
    assert answer == {"error": TOO_LONG_MESSAGE}


async def test_remote_mention_counts_only_its_username(cluster: Cluster) -> None:
    author = await cluster.new_account()
    mention = "@someone@social.example.org"  # counts as "@someone": 8 characters
    await create(cluster, {"account_id": author, "status": mention + " " + "a" * 491})
    await create(cluster, {"account_id": author, "status": mention + " " + "a" * 492}, expect=422)


async def test_spoiler_text_counts_towards_the_limit(cluster: Cluster) -> None:
    author = await cluster.new_account()
    await create(cluster, {"account_id": author, "status": "a" * 490, "spoiler_text": "b" * 10})
    await create(cluster, {"account_id": author, "status": "a" * 490, "spoiler_text": "b" * 11}, expect=422)


@pytest.mark.parametrize("text", ["", "   ", "\n\t \u3000", None, 42])
async def test_blank_status_is_rejected(cluster: Cluster, text: object) -> None:
    author = await cluster.new_account()
    answer = await create(cluster, {"account_id": author, "status": text}, expect=422)
    assert answer == {"error": BLANK_MESSAGE}


async def test_status_with_nul_is_rejected(cluster: Cluster) -> None:
    author = await cluster.new_account()
    answer = await create(cluster, {"account_id": author, "status": "a\x00b"}, expect=400)
    assert answer == {"error": NUL_MESSAGE}


async def test_status_fields_are_stored(cluster: Cluster) -> None:
    author = await cluster.new_account()
    status = await cluster.post(
        author, "careful", visibility="unlisted", spoiler_text="cw", sensitive=True, language="en"
    )
    assert await cluster.status(status["id"]) == {
        **status,
        "favourited": False,
        "reblogged": False,
    }
    assert status["visibility"] == "unlisted"
    assert status["spoiler_text"] == "cw"
    assert status["sensitive"] is True
    assert status["language"] == "en"
    assert status["created_at"].endswith("Z")
    assert len(status["created_at"]) == len("2026-12-04T20:50:15.123Z")
    assert status["edited_at"] is None


async def test_unknown_visibility_is_rejected(cluster: Cluster) -> None:
    author = await cluster.new_account()
    await create(cluster, {"account_id": author, "status": "hi", "visibility": "everyone"}, expect=422)


async def test_mentions_resolve_local_accounts_only(cluster: Cluster) -> None:
    author = await cluster.new_account()
    bob = await cluster.new_account("bob")
    bob_name = await cluster.username(bob)
    text = f"hi @{bob_name.upper()} and @{bob_name}@localhost:8080 and @nobody_here and @{bob_name}@elsewhere.org"
    status = await cluster.post(author, text)
    assert status["mentions"] == [{"id": bob, "username": bob_name.upper()}]


async def test_reply_counts_on_parent(cluster: Cluster) -> None:
    author = await cluster.new_account()
    replier = await cluster.new_account()
    parent = await cluster.post(author, "parent")
    reply = await cluster.post(replier, "reply", in_reply_to_id=parent["id"])
    assert reply["in_reply_to_id"] == parent["id"]
    assert reply["in_reply_to_account_id"] == author
    assert (await cluster.status(parent["id"]))["replies_count"] == 1

    await cluster.delete_status(replier, reply["id"])
    assert (await cluster.status(parent["id"]))["replies_count"] == 0


async def test_reply_to_missing_status_is_not_found(cluster: Cluster) -> None:
    author = await cluster.new_account()
    answer = await create(cluster, {"account_id": author, "status": "hi", "in_reply_to_id": "12345"}, expect=404)
    assert answer == {"error": "Record not found"}


async def test_reply_to_deleted_status_is_not_found(cluster: Cluster) -> None:
    author = await cluster.new_account()
    parent = await cluster.post(author, "soon gone")
    await cluster.delete_status(author, parent["id"])
    await create(cluster, {"account_id": author, "status": "hi", "in_reply_to_id": parent["id"]}, expect=404)


async def test_favourite_counts_and_viewer_flags(cluster: Cluster) -> None:
    author = await cluster.new_account()
    fan = await cluster.new_account()
    other = await cluster.new_account()
    status = await cluster.post(author, "like me")

    favourited = await cluster.posts.post(f"/internal/statuses/{status['id']}/favourite", {"account_id": fan})
    assert favourited["favourited"] is True
    assert favourited["favourites_count"] == 1
    assert (await cluster.status(status["id"], viewer_id=other))["favourited"] is False
    assert (await cluster.status(status["id"], viewer_id=fan))["favourited"] is True
    assert (await cluster.status(status["id"]))["favourited"] is False

    twice = await cluster.posts.post(f"/internal/statuses/{status['id']}/favourite", {"account_id": fan}, expect=422)
    assert twice == {"error": ALREADY_FAVOURITED}
    assert (await cluster.status(status["id"]))["favourites_count"] == 1

    for _ in range(2):
        undone = await cluster.posts.post(f"/internal/statuses/{status['id']}/unfavourite", {"account_id": fan})
        assert undone["favourited"] is False
        assert undone["favourites_count"] == 0


async def test_favourite_of_missing_status_is_not_found(cluster: Cluster) -> None:
    fan = await cluster.new_account()
    await cluster.posts.post("/internal/statuses/999/favourite", {"account_id": fan}, expect=404)


async def test_delete_of_someone_elses_status_is_forbidden(cluster: Cluster) -> None:
    author = await cluster.new_account()
    intruder = await cluster.new_account()
    status = await cluster.post(author, "mine")
    answer = await cluster.delete_status(intruder, status["id"], expect=403)
    assert answer == {"error": NOT_AUTHOR}
    assert (await cluster.status(status["id"]))["text"] == "mine"


async def test_delete_returns_status_for_redraft(cluster: Cluster) -> None:
    author = await cluster.new_account()
    status = await cluster.post(author, "redraft me")
    deleted = await cluster.delete_status(author, status["id"])
    assert deleted["text"] == "redraft me"
    assert deleted["id"] == status["id"]
    await cluster.status(status["id"], expect=404)
    await cluster.delete_status(author, status["id"], expect=404)


async def test_idempotency_key_returns_first_status(cluster: Cluster) -> None:
    author = await cluster.new_account()
    body = {"account_id": author, "status": "once", "idempotency_key": "key-1"}
    first = await create(cluster, body)
    repeat = await create(cluster, body)
    assert first["created"] is True
    assert repeat["created"] is False
    assert repeat["status"]["id"] == first["status"]["id"]
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": author})
    assert stats[author]["statuses_count"] == 1


async def test_idempotency_key_reused_with_other_text_is_rejected(cluster: Cluster) -> None:
    author = await cluster.new_account()
    await create(cluster, {"account_id": author, "status": "once", "idempotency_key": "key-2"})
    answer = await create(cluster, {"account_id": author, "status": "twice", "idempotency_key": "key-2"}, expect=422)
    assert answer == {"error": IDEMPOTENCY_REUSED}


async def test_idempotency_key_is_per_account(cluster: Cluster) -> None:
    alice = await cluster.new_account()
    bob = await cluster.new_account()
    first = await create(cluster, {"account_id": alice, "status": "same", "idempotency_key": "shared"})
    second = await create(cluster, {"account_id": bob, "status": "same", "idempotency_key": "shared"})
    assert second["created"] is True
    assert second["status"]["id"] != first["status"]["id"]
    assert second["status"]["account_id"] == bob


async def test_statuses_batch_keeps_order_and_skips_missing(cluster: Cluster) -> None:
    author = await cluster.new_account()
    first = await cluster.post(author, "one")
    second = await cluster.post(author, "two")
    found = await cluster.posts.get("/internal/statuses", params={"ids": f"{second['id']},1,{first['id']}"})
    assert [s["id"] for s in found] == [second["id"], first["id"]]
    too_many = ",".join(str(i) for i in range(1, 202))
    await cluster.posts.get("/internal/statuses", params={"ids": too_many}, expect=422)


async def test_statuses_batch_with_author_stats(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "original")
    shared = await cluster.reblog(sharer, original["id"])
    ids = f"{shared['id']},1,{original['id']}"

    found = await cluster.posts.get("/internal/statuses", params={"ids": ids, "author_stats": "true"})
    plain = await cluster.posts.get("/internal/statuses", params={"ids": ids})
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": f"{author},{sharer}"})

    assert found["statuses"] == plain
    assert set(found["author_stats"]) == {author, sharer}
    assert found["author_stats"][author] == stats[author]
    assert found["author_stats"][sharer] == stats[sharer]


async def test_author_stats_of_lone_reblog(cluster: Cluster) -> None:
    author = await cluster.new_account()
    sharer = await cluster.new_account()
    original = await cluster.post(author, "original")
    shared = await cluster.reblog(sharer, original["id"])

    found = await cluster.posts.get("/internal/statuses", params={"ids": shared["id"], "author_stats": "true"})
    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": f"{author},{sharer}"})

    assert [status["id"] for status in found["statuses"]] == [shared["id"]]
    assert found["author_stats"] == {author: stats[author], sharer: stats[sharer]}


async def test_statuses_batch_with_author_stats_of_none_found(cluster: Cluster) -> None:
    found = await cluster.posts.get("/internal/statuses", params={"ids": "1,2", "author_stats": "true"})
    assert found == {"statuses": [], "author_stats": {}}


async def test_context_orders_thread(cluster: Cluster) -> None:
    author = await cluster.new_account()
    root = await cluster.post(author, "root")
    a = await cluster.post(author, "a", in_reply_to_id=root["id"])
    b = await cluster.post(author, "b", in_reply_to_id=root["id"])
    a1 = await cluster.post(author, "a1", in_reply_to_id=a["id"])
    a1x = await cluster.post(author, "a1x", in_reply_to_id=a1["id"])
    b1 = await cluster.post(author, "b1", in_reply_to_id=b["id"])
    a2 = await cluster.post(author, "a2", in_reply_to_id=a["id"])

    context = await cluster.posts.get(f"/internal/statuses/{a1['id']}/context")
    assert [s["text"] for s in context["ancestors"]] == ["root", "a"]
    assert [s["text"] for s in context["descendants"]] == ["a1x"]

    whole = await cluster.posts.get(f"/internal/statuses/{root['id']}/context")
    assert whole["ancestors"] == []
    assert [s["id"] for s in whole["descendants"]] == [a["id"], a1["id"], a1x["id"], a2["id"], b["id"], b1["id"]]

    await cluster.posts.get("/internal/statuses/1/context", expect=404)


async def test_context_skips_deleted_ancestor(cluster: Cluster) -> None:
    author = await cluster.new_account()
    root = await cluster.post(author, "root")
    middle = await cluster.post(author, "middle", in_reply_to_id=root["id"])
    leaf = await cluster.post(author, "leaf", in_reply_to_id=middle["id"])
    await cluster.delete_status(author, middle["id"])
    context = await cluster.posts.get(f"/internal/statuses/{leaf['id']}/context")
    assert context["ancestors"] == []
    assert (await cluster.status(leaf["id"]))["in_reply_to_id"] == middle["id"]


async def test_account_stats_and_instance_count(cluster: Cluster) -> None:
    author = await cluster.new_account()
    silent = await cluster.new_account()
    before = (await cluster.posts.get("/internal/stats"))["status_count"]
    first = await cluster.post(author, "one")
    await cluster.post(author, "two")
    await cluster.reblog(author, first["id"])

    stats = await cluster.posts.get("/internal/accounts/stats", params={"ids": f"{author},{silent}"})
    assert stats[silent] == {"statuses_count": 0, "last_status_at": None}
    assert stats[author]["statuses_count"] == 3  # reblogs count, as in Mastodon
    assert stats[author]["last_status_at"] == first["created_at"][:10]
    assert (await cluster.posts.get("/internal/stats"))["status_count"] == before + 2


async def test_status_refs_list_newest_first(cluster: Cluster) -> None:
    author = await cluster.new_account()
    first = await cluster.post(author, "one")
    second = await cluster.post(author, "two")
    shared = await cluster.reblog(author, first["id"])
    refs = await cluster.posts.get(f"/internal/accounts/{author}/status-refs", params={"limit": 2})
    assert refs == [
        {"id": shared["id"], "account_id": author, "reblog_of_id": first["id"]},
        {"id": second["id"], "account_id": author, "reblog_of_id": None},
    ]
    everything = await cluster.posts.get("/internal/status-refs", params={"after_id": int(first["id"]) - 1, "limit": 5000})
    mine = [ref["id"] for ref in everything if ref["account_id"] == author]
    assert mine == [first["id"], second["id"], shared["id"]]


async def test_internal_route_needs_service_token(cluster: Cluster) -> None:
    answer = await cluster.posts.get("/internal/stats", token="wrong", expect=401)
    assert answer == {"error": "Missing or wrong service token"}
    await cluster.posts.get("/internal/stats", token=None, expect=401)


async def test_invalid_ids_are_rejected(cluster: Cluster) -> None:
    await cluster.posts.get("/internal/statuses", params={"ids": "1,abc"}, expect=422)
    await cluster.posts.post("/internal/statuses", {"account_id": "x", "status": "hi"}, expect=422)
    await cluster.posts.post("/internal/statuses", {"status": "hi"}, expect=422)
