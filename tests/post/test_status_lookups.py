"""The post service's batch routes: several pages of statuses, each for its own viewer, in one call.

``/internal/statuses/lookups`` reads statuses by id, ``/internal/accounts/statuses/lookups``
pages of accounts' statuses, and ``/internal/statuses/pages`` both kinds at once.
"""

from __future__ import annotations

import pytest

from tests.post.cluster import Cluster

LOOKUPS = "/internal/statuses/lookups"


async def single(cluster: Cluster, ids: list[str], viewer_id: str) -> dict:
    params = {"ids": ",".join(ids), "viewer_id": viewer_id, "author_stats": "true"}
    return await cluster.posts.get("/internal/statuses", params=params)


async def test_lookups_match_single_calls(cluster: Cluster) -> None:
    alice, bob, carol = [await cluster.new_account(name) for name in ("alice", "bob", "carol")]
    first = await cluster.post(alice, "first, hello @bob")
    second = await cluster.post(bob, "second")
    reblog = await cluster.reblog(carol, first["id"])
    await cluster.posts.post(f"/internal/statuses/{second['id']}/favourite", {"account_id": alice})
    pages = [
        ([second["id"], first["id"], reblog["id"]], alice),
        ([reblog["id"], second["id"]], carol),
        ([first["id"], first["id"], "999999"], bob),
    ]

    answer = await cluster.posts.post(LOOKUPS, {"lookups": [{"ids": ids, "viewer_id": viewer} for ids, viewer in pages]})

    assert answer["results"] == [await single(cluster, ids, viewer) for ids, viewer in pages]
    by_viewer = {viewer: result["statuses"] for (_, viewer), result in zip(pages, answer["results"], strict=True)}
    assert [status["favourited"] for status in by_viewer[alice]] == [True, False, False]
    assert [status["reblogged"] for status in by_viewer[carol]] == [True, False]
    assert [status["id"] for status in by_viewer[bob]] == [first["id"]]


FIXED_FIELDS = {"text", "created_at", "in_reply_to_id", "in_reply_to_account_id", "visibility", "spoiler_text", "sensitive", "language"}


async def test_known_statuses_come_compact(cluster: Cluster) -> None:
    alice, bob = await cluster.new_account("alice"), await cluster.new_account("bob")
    original = await cluster.post(alice, "original")
    reply = await cluster.post(bob, "a reply", in_reply_to_id=original["id"])
    reblog = await cluster.reblog(bob, original["id"])
    await cluster.posts.post(f"/internal/statuses/{original['id']}/favourite", {"account_id": bob})
    ids = [reblog["id"], reply["id"], original["id"]]
    full = (await single(cluster, ids, bob))["statuses"]

    answer = await cluster.posts.post(
        LOOKUPS, {"lookups": [{"ids": ids, "viewer_id": bob, "known": [original["id"], reblog["id"]]}]}
    )

    wrapper, replied, compact = answer["results"][0]["statuses"]
    assert replied == full[1]
    assert compact == {key: value for key, value in full[2].items() if key not in FIXED_FIELDS | {"edited_at"}}
    assert compact["account_id"] == alice
    assert (compact["favourites_count"], compact["favourited"]) == (1, True)
    assert "text" not in wrapper
    assert wrapper["reblog"] == compact


async def test_known_list_leaves_other_lookups_full(cluster: Cluster) -> None:
    author = await cluster.new_account()
    status = await cluster.post(author, "once")

    answer = await cluster.posts.post(
        LOOKUPS, {"lookups": [{"ids": [status["id"]], "known": [status["id"]]}, {"ids": [status["id"]]}]}
    )

    compact, full = (result["statuses"][0] for result in answer["results"])
    assert "text" not in compact
    assert full["text"] == "once"


async def test_lookups_skip_deleted_status(cluster: Cluster) -> None:
    author = await cluster.new_account()
    remaining, deleted = await cluster.post(author, "remaining"), await cluster.post(author, "deleted")
    await cluster.delete_status(author, deleted["id"])

    answer = await cluster.posts.post(
        LOOKUPS, {"lookups": [{"ids": [deleted["id"], remaining["id"]], "viewer_id": author}, {"ids": [deleted["id"]]}]}
    )

    assert [[status["id"] for status in result["statuses"]] for result in answer["results"]] == [[remaining["id"]], []]
    assert answer["results"][1]["author_stats"] == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": []}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": {"ids": []}}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": [{"ids": []}] * 65}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": ["1"]}, "each look-up must be an object with a list of ids"),
        ({"lookups": [{"ids": "1,2"}]}, "each look-up must be an object with a list of ids"),
        ({"lookups": [{"ids": [1]}]}, "ids must be a list of at most 200 numeric ids"),
        ({"lookups": [{"ids": ["1"] * 201}]}, "ids must be a list of at most 200 numeric ids"),
        ({"lookups": [{"ids": ["x"]}]}, "ids must be a numeric id"),
        ({"lookups": [{"ids": ["1"], "viewer_id": "-1"}]}, "viewer_id must be a numeric id"),
        ({"lookups": [{"ids": ["1"], "known": "1"}]}, "known must be a list of at most 200 numeric ids"),
        ({"lookups": [{"ids": ["1"], "known": ["x"]}]}, "known must be a numeric id"),
    ],
    ids=[
        "missing", "empty", "object", "too-many", "not-an-object", "ids-not-a-list", "int-id", "too-many-ids", "bad-id",
        "bad-viewer", "known-not-a-list", "bad-known-id",
    ],
)
async def test_lookups_reject_malformed_batch(cluster: Cluster, body: dict, message: str) -> None:
    answer = await cluster.posts.post(LOOKUPS, body, expect=422)

    assert answer == {"error": message}


async def test_lookups_need_service_token(cluster: Cluster) -> None:
    await cluster.posts.post(LOOKUPS, {"lookups": [{"ids": []}]}, token=None, expect=401)


ACCOUNT_LOOKUPS = "/internal/accounts/statuses/lookups"


async def single_account_page(cluster: Cluster, lookup: dict) -> dict:
    params = {key: value for key, value in lookup.items() if key != "account_id" and value is not None}
    params.update({key: str(value).lower() for key, value in params.items() if isinstance(value, bool)})
    path = f"/internal/accounts/{lookup['account_id']}/statuses"
    return await cluster.posts.get(path, params={**params, "author_stats": "true"})


async def test_account_pages_match_single_calls(cluster: Cluster) -> None:
    alice, bob = await cluster.new_account("alice"), await cluster.new_account("bob")
    first = await cluster.post(alice, "first")
    await cluster.post(alice, "a reply to myself", in_reply_to_id=first["id"])
    third = await cluster.post(bob, "bob's own")
    await cluster.reblog(alice, third["id"])
    await cluster.posts.post(f"/internal/statuses/{first['id']}/favourite", {"account_id": bob})
    lookups = [
        {"account_id": alice, "viewer_id": bob},
        {"account_id": alice, "viewer_id": None, "limit": "2"},
        {"account_id": alice, "viewer_id": alice, "exclude_reblogs": True},
        {"account_id": alice, "viewer_id": bob, "max_id": third["id"], "exclude_replies": True},
        {"account_id": bob, "min_id": "1"},
        {"account_id": "999999"},
    ]

    answer = await cluster.posts.post(ACCOUNT_LOOKUPS, {"lookups": lookups})

    assert answer["results"] == [await single_account_page(cluster, lookup) for lookup in lookups]
    # exclude_replies keeps self-replies (threads), as Mastodon does.
    assert [len(result["statuses"]) for result in answer["results"]] == [3, 2, 2, 2, 1, 0]
    assert answer["results"][0]["statuses"][-1]["favourited"] is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"lookups": []}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": [{"account_id": "1"}] * 65}, "lookups must be a list of 1 to 64 look-ups"),
        ({"lookups": ["1"]}, "each look-up must be an object with an account_id"),
        ({"lookups": [{"viewer_id": "1"}]}, "each look-up must be an object with an account_id"),
        ({"lookups": [{"account_id": "x"}]}, "account_id must be a numeric id"),
        ({"lookups": [{"account_id": "1", "limit": 20}]}, "limit, max_id, since_id, min_id must be strings"),
        ({"lookups": [{"account_id": "1", "limit": "0"}]}, "limit must be a positive integer"),
        ({"lookups": [{"account_id": "1", "max_id": "-5"}]}, "max_id must be a numeric id"),
        ({"lookups": [{"account_id": "1", "exclude_replies": []}]}, "exclude_replies must be true or false"),
        ({"lookups": [{"account_id": "1", "exclude_reblogs": {}}]}, "exclude_reblogs must be true or false"),
        ({"lookups": [{"account_id": "1", "exclude_replies": "maybe"}]}, "exclude_replies must be true or false"),
        ({"lookups": [{"account_id": "1", "exclude_reblogs": "true"}]}, "exclude_reblogs must be true or false"),
    ],
    ids=[
        "empty", "too-many", "not-an-object", "no-account", "bad-account", "int-limit", "zero-limit", "bad-cursor",
        "list-flag", "object-flag", "word-flag", "string-flag",
    ],
)
async def test_account_pages_reject_malformed_batch(cluster: Cluster, body: dict, message: str) -> None:
    answer = await cluster.posts.post(ACCOUNT_LOOKUPS, body, expect=422)

    assert answer == {"error": message}


PAGES = "/internal/statuses/pages"


async def test_pages_match_separate_calls(cluster: Cluster) -> None:
    alice, bob = await cluster.new_account("alice"), await cluster.new_account("bob")
    first = await cluster.post(alice, "first")
    second = await cluster.post(bob, "second")
    await cluster.reblog(bob, first["id"])
    await cluster.posts.post(f"/internal/statuses/{first['id']}/favourite", {"account_id": bob})
    lookups = [{"ids": [second["id"], first["id"]], "viewer_id": bob, "known": [first["id"]]}, {"ids": [first["id"]]}]
    account_pages = [{"account_id": bob, "viewer_id": bob}, {"account_id": alice, "limit": "1"}]

    answer = await cluster.posts.post(PAGES, {"lookups": lookups, "account_pages": account_pages})

    assert answer["lookups"] == (await cluster.posts.post(LOOKUPS, {"lookups": lookups}))["results"]
    assert answer["account_pages"] == (await cluster.posts.post(ACCOUNT_LOOKUPS, {"lookups": account_pages}))["results"]
    assert "text" not in answer["lookups"][0]["statuses"][1]
    assert answer["account_pages"][0]["statuses"][0]["reblog"]["favourited"] is True


async def test_pages_take_either_list_alone(cluster: Cluster) -> None:
    author = await cluster.new_account()
    status = await cluster.post(author, "alone")

    only_lookups = await cluster.posts.post(PAGES, {"lookups": [{"ids": [status["id"]]}]})
    only_pages = await cluster.posts.post(PAGES, {"account_pages": [{"account_id": author}]})

    assert [page["statuses"][0]["id"] for page in only_lookups["lookups"]] == [status["id"]]
    assert only_lookups["account_pages"] == []
    assert only_pages["lookups"] == []
    assert [page["statuses"][0]["id"] for page in only_pages["account_pages"]] == [status["id"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "lookups and account_pages must not both be empty"),
        ({"lookups": [], "account_pages": []}, "lookups and account_pages must not both be empty"),
        ({"lookups": {"ids": []}}, "lookups must be a list of 0 to 64 look-ups"),
        ({"account_pages": [{"account_id": "1"}] * 65}, "account_pages must be a list of 0 to 64 pages"),
        ({"lookups": [{"ids": "1"}]}, "each look-up must be an object with a list of ids"),
        ({"account_pages": [{"viewer_id": "1"}]}, "each look-up must be an object with an account_id"),
        ({"lookups": [{"ids": ["1"]}], "account_pages": [{"account_id": "1", "exclude_replies": "no"}]}, "exclude_replies must be true or false"),
    ],
    ids=["neither", "both-empty", "lookups-object", "too-many-pages", "bad-lookup", "page-without-account", "bad-flag"],
)
async def test_pages_reject_malformed_batch(cluster: Cluster, body: dict, message: str) -> None:
    answer = await cluster.posts.post(PAGES, body, expect=422)

    assert answer == {"error": message}
