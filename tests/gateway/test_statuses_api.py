"""Status endpoints through the gateway: rendering, visibility, errors and the home timeline."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import PublicApi


async def wait_for_home(api: PublicApi, token: str, expected_count: int) -> list[dict]:
    for _ in range(100):
        home = await api.call("GET", "/api/v1/timelines/home", token=token, params={"limit": 40})
        if len(home.body) >= expected_count:
            return home.body
        await asyncio.sleep(0.05)
    raise AssertionError(f"home timeline did not reach {expected_count} statuses")


async def test_status_renders_as_a_mastodon_entity(api: PublicApi) -> None:
    alice, bob = await api.register_user("alice"), await api.register_user("bob")

    answer = await api.call(
        "POST", "/api/v1/statuses", token=alice.token, data={"status": "Hi @bob, see https://example.org/a?b=1 <3"}
    )

    assert answer.status == 200
    status = answer.body
    assert status["account"]["id"] == alice.id
    assert status["account"]["statuses_count"] == 1
    assert status["mentions"] == [{"id": bob.id, "username": "bob", "acct": "bob", "url": f"{api.base_url}/@bob"}]
    assert status["content"].startswith("<p>Hi <span class=\"h-card\">")
    assert '<a href="https://example.org/a?b=1"' in status["content"]
    assert status["content"].endswith("&lt;3</p>")
    assert status["created_at"].endswith("Z")
    assert len(status["created_at"]) == len("2026-12-04T20:50:15.123Z")
    assert status["favourited"] is False
    assert status["reblog"] is None


@pytest.mark.parametrize("visibility", ["private", "direct", "everyone"])
async def test_unsupported_visibility_is_rejected(api: PublicApi, visibility: str) -> None:
    alice = await api.register_user()

    answer = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "secret", "visibility": visibility})

    assert answer.status == 422
    assert "not supported" in answer.body["error"]
    statuses = await api.call("GET", f"/api/v1/accounts/{alice.id}/statuses")
    assert statuses.body == []


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"status": ""}, 422),
        ({"status": "   \n\t "}, 422),
        ({"status": "x" * 501}, 422),
        ({"status": "reply", "in_reply_to_id": "123456"}, 404),
        ({"status": "reply", "in_reply_to_id": "not-a-number"}, 422),
    ],
)
async def test_invalid_statuses_are_rejected_and_nothing_is_posted(api: PublicApi, form: dict, status: int) -> None:
    alice = await api.register_user()

    answer = await api.call("POST", "/api/v1/statuses", token=alice.token, data=form)

    assert answer.status == status
    assert isinstance(answer.body["error"], str)
    assert (await api.call("GET", f"/api/v1/accounts/{alice.id}/statuses")).body == []


async def test_invalid_utf8_body_is_rejected(api: PublicApi) -> None:
    alice = await api.register_user()

    answer = await api.call(
        "POST",
        "/api/v1/statuses",
        token=alice.token,
        data=b"status=\xff\xfe\xfd",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer.status == 400
    assert (await api.call("GET", f"/api/v1/accounts/{alice.id}/statuses")).body == []


async def test_posting_needs_a_user_token(api: PublicApi) -> None:
    anonymous = await api.call("POST", "/api/v1/statuses", data={"status": "hi"})
    app_only = await api.call("POST", "/api/v1/statuses", token=api.app_token, data={"status": "hi"})

    assert anonymous.status == 401
    assert app_only.status == 401


async def test_deleting_someone_elses_status_is_forbidden(api: PublicApi) -> None:
    alice, bob = await api.register_user(), await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "mine"})

    answer = await api.call("DELETE", f"/api/v1/statuses/{posted.body['id']}", token=bob.token)

    assert answer.status == 403
    assert (await api.call("GET", f"/api/v1/statuses/{posted.body['id']}")).status == 200


async def test_delete_returns_the_text_for_redrafting(api: PublicApi) -> None:
    alice = await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "draft me"})

    deleted = await api.call("DELETE", f"/api/v1/statuses/{posted.body['id']}", token=alice.token)
    again = await api.call("DELETE", f"/api/v1/statuses/{posted.body['id']}", token=alice.token)

    assert deleted.status == 200
    assert deleted.body["text"] == "draft me"
    assert again.status == 404
    assert again.body == {"error": "Record not found"}


async def test_idempotency_key_returns_the_first_status(api: PublicApi) -> None:
    alice = await api.register_user()
    headers = {"Idempotency-Key": "same-key"}

    first = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "once"}, headers=headers)
    repeat = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "once"}, headers=headers)
    changed = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "twice"}, headers=headers)

    assert first.status == repeat.status == 200
    assert repeat.body["id"] == first.body["id"]
    assert changed.status == 422
    assert len((await api.call("GET", f"/api/v1/accounts/{alice.id}/statuses")).body) == 1


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=-1", "limit=abc", "max_id=abc", "since_id=-3", "min_id=99999999999999999999999"],
)
async def test_bad_pagination_parameters_are_rejected(api: PublicApi, query: str) -> None:
    alice = await api.register_user()

    home = await api.call("GET", f"/api/v1/timelines/home?{query}", token=alice.token)
    statuses = await api.call("GET", f"/api/v1/accounts/{alice.id}/statuses?{query}")

    assert home.status == 422
    assert statuses.status == 422


async def test_home_timeline_accounts_carry_post_stats(api: PublicApi) -> None:
    alice, bob = await api.register_user("alice"), await api.register_user("bob")
    first = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "one"})
    await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "two"})
    shared = await api.call("POST", f"/api/v1/statuses/{first.body['id']}/reblog", token=bob.token)

    home = await wait_for_home(api, bob.token, 1)

    assert shared.status == 200
    assert home[0]["id"] == shared.body["id"]
    assert home[0]["account"]["id"] == bob.id
    assert home[0]["account"]["statuses_count"] == 1
    assert home[0]["reblog"]["account"]["id"] == alice.id
    assert home[0]["reblog"]["account"]["statuses_count"] == 2
    assert home[0]["reblog"]["account"]["last_status_at"] == first.body["created_at"][:10]


async def test_status_endpoint_shows_profile_edit_at_once(api: PublicApi) -> None:
    alice = await api.register_user("alice")
    posted = await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": "hello"})
    await wait_for_home(api, alice.token, 1)  # the home page caches alice's account record briefly

    edit = await api.call("PATCH", "/api/v1/accounts/update_credentials", token=alice.token, data={"display_name": "Al"})
    status = await api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=alice.token)
    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=alice.token)

    assert edit.status == 200
    assert status.body["account"]["display_name"] == "Al"
    assert me.body["display_name"] == "Al"


async def test_home_timeline_limit_defaults_to_20_and_caps_at_40(api: PublicApi) -> None:
    alice = await api.register_user()
    for number in range(45):
        await api.call("POST", "/api/v1/statuses", token=alice.token, data={"status": f"number {number}"})
    await wait_for_home(api, alice.token, 40)

    default = await api.call("GET", "/api/v1/timelines/home", token=alice.token)
    capped = await api.call("GET", "/api/v1/timelines/home", token=alice.token, params={"limit": 100})

    assert len(default.body) == 20
    assert len(capped.body) == 40
    assert 'rel="next"' in default.headers["Link"]


async def test_home_timeline_walk_is_exact_with_deletions_between_pages(api: PublicApi) -> None:
    alice, bob = await api.register_user(), await api.register_user()
    await api.call("POST", f"/api/v1/accounts/{bob.id}/follow", token=alice.token)
    posted = []
    for number in range(60):
        answer = await api.call("POST", "/api/v1/statuses", token=bob.token, data={"status": f"bob {number}"})
        posted.append(answer.body["id"])
    await wait_for_home(api, alice.token, 40)
    for _ in range(100):
        everything = await _walk(api, alice.token, on_page=None)
        if len(everything) == 60:
            break
        await asyncio.sleep(0.05)

    read_then_deleted: list[str] = []
    deleted_unread: list[str] = []

    async def delete_between_pages(page: list[dict]) -> None:
        # The page's last status is the next cursor: deleting it must not break the walk.
        cursor = page[-1]["id"]
        await api.call("DELETE", f"/api/v1/statuses/{cursor}", token=bob.token)
        read_then_deleted.append(cursor)
        # The oldest status is still ahead of the walk (unless this is the last page): once deleted it must never show up.
        if posted[0] not in {status["id"] for status in page}:
            oldest = posted.pop(0)
            await api.call("DELETE", f"/api/v1/statuses/{oldest}", token=bob.token)
            deleted_unread.append(oldest)
        await asyncio.sleep(0.3)  # let the deletions reach the timeline

    walked = await _walk(api, alice.token, on_page=delete_between_pages)

    assert len(walked) == len(set(walked))
    assert walked == sorted(walked, key=int, reverse=True)
    assert len(deleted_unread) == 2
    assert not set(walked) & set(deleted_unread)
    assert set(walked) == set(posted) | set(read_then_deleted)


async def _walk(api: PublicApi, token: str, *, on_page) -> list[str]:  # noqa: ANN001
    seen: list[str] = []
    path = "/api/v1/timelines/home?limit=25"
    while True:
        page = await api.call("GET", path, token=token)
        assert page.status == 200
        if not page.body:
            return seen
        seen.extend(status["id"] for status in page.body)
        if on_page is not None:
            await on_page(page.body)
        path = page.headers["Link"].split(";")[0].strip("<>").replace(api.base_url, "")
