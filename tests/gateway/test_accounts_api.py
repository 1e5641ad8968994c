"""The account half of the public API, through the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import PublicApi


async def test_registration_returns_a_token_usable_at_once(api: PublicApi) -> None:
    user = await api.register_user("alice")

    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)

    assert me.status == 200
    assert me.body["username"] == "alice"
    assert me.body["acct"] == "alice"
    assert me.body["source"]["privacy"] == "public"
    assert me.body["statuses_count"] == 0
    assert me.body["created_at"].endswith(".000Z")


async def test_username_taken_without_regard_to_case(api: PublicApi) -> None:
    await api.register_user("Alice")

    answer = await api.call(
        "POST",
        "/api/v1/accounts",
        token=api.app_token,
        data={"username": "alice", "email": "other@example.org", "password": "long enough pw", "agreement": "1"},
    )

    assert answer.status == 422
    assert answer.body["details"]["username"][0]["error"] == "ERR_TAKEN"
    instance = await api.call("GET", "/api/v1/instance")
    assert instance.body["stats"]["user_count"] == 1


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"username": "bad name"}, "username", "ERR_INVALID"),
        ({"username": "x" * 31}, "username", "ERR_INVALID"),
        ({"username": ""}, "username", "ERR_BLANK"),
        ({"username": "ümlaut"}, "username", "ERR_INVALID"),
        ({"email": "not-an-email"}, "email", "ERR_INVALID"),
        ({"password": "short"}, "password", "ERR_TOO_SHORT"),
        ({"agreement": "0"}, "agreement", "ERR_ACCEPTED"),
    ],
)
async def test_invalid_registration_is_rejected_with_details(
    api: PublicApi, fields: dict[str, str], field: str, code: str
) -> None:
    form = {"username": "valid_name", "email": "valid@example.org", "password": "long enough pw", "agreement": "1"}
    form.update(fields)

    answer = await api.call("POST", "/api/v1/accounts", token=api.app_token, data=form)

    assert answer.status == 422
    assert answer.body["details"][field][0]["error"] == code
    assert answer.body["error"].startswith("Validation failed")


async def test_registration_needs_a_token(api: PublicApi) -> None:
    answer = await api.call(
        "POST", "/api/v1/accounts", data={"username": "bob", "email": "bob@example.org", "password": "long enough pw", "agreement": "1"}
    )

    assert answer.status == 401
    assert answer.body == {"error": "The access token is invalid"}


async def test_password_grant_accepts_email_or_username(api: PublicApi) -> None:
    user = await api.register_user("carol")

    by_email = await api.password_login(user.email, user.password)
    by_name = await api.password_login("CAROL", user.password)

    assert by_email.status == 200
    assert by_name.status == 200
    assert by_email.body["scope"] == "read write follow"
    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=by_email.body["access_token"])
    assert me.body["id"] == user.id


@pytest.mark.parametrize(("login", "password"), [("carol", "wrong password"), ("nobody", "correct horse battery")])
async def test_password_grant_rejects_wrong_credentials(api: PublicApi, login: str, password: str) -> None:
    await api.register_user("carol")

    answer = await api.password_login(login, password)

    assert answer.status == 401
    assert "access_token" not in answer.body


async def test_token_grant_rejects_wrong_client_secret(api: PublicApi) -> None:
    answer = await api.call(
        "POST",
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": api.client_id, "client_secret": "wrong"},
    )

    assert answer.status == 401


async def test_unsupported_grant_is_rejected(api: PublicApi) -> None:
    answer = await api.call(
        "POST",
        "/oauth/token",
        data={"grant_type": "implicit", "client_id": api.client_id, "client_secret": api.client_secret},
    )

    assert answer.status == 422


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic abc"])
async def test_missing_or_wrong_token_is_401(api: PublicApi, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}

    answer = await api.call("GET", "/api/v1/accounts/verify_credentials", headers=headers)

    assert answer.status == 401
    assert answer.body == {"error": "The access token is invalid"}


async def test_revoked_token_stops_working(api: PublicApi) -> None:
    user = await api.register_user()
    login = await api.password_login(user.email, user.password)
    token = login.body["access_token"]

    revoked = await api.call(
        "POST", "/oauth/revoke", data={"client_id": api.client_id, "client_secret": api.client_secret, "token": token}
    )
    after = await api.call("GET", "/api/v1/accounts/verify_credentials", token=token)

    assert revoked.status == 200
    assert after.status == 401
    still_valid = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)
    assert still_valid.status == 200


async def test_update_credentials_changes_profile(api: PublicApi) -> None:
    user = await api.register_user()

    answer = await api.call(
        "PATCH", "/api/v1/accounts/update_credentials", token=user.token, data={"display_name": "Dora 🎉", "note": "hi <b>"}
    )

    assert answer.status == 200
    assert answer.body["display_name"] == "Dora 🎉"
    assert answer.body["note"] == "<p>hi &lt;b&gt;</p>"
    assert answer.body["source"]["note"] == "hi <b>"


@pytest.mark.parametrize(("field", "value"), [("display_name", "x" * 31), ("note", "y" * 501)])
async def test_update_credentials_rejects_long_fields(api: PublicApi, field: str, value: str) -> None:
    user = await api.register_user()

    answer = await api.call("PATCH", "/api/v1/accounts/update_credentials", token=user.token, data={field: value})

    assert answer.status == 422
    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)
    assert me.body[field] == ""


async def test_lookup_and_get_account(api: PublicApi) -> None:
    user = await api.register_user("erin")

    found = await api.call("GET", "/api/v1/accounts/lookup", params={"acct": "@ERIN"})
    by_id = await api.call("GET", f"/api/v1/accounts/{user.id}")

    assert found.status == 200
    assert found.body["id"] == user.id
    assert by_id.body["username"] == "erin"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/accounts/123456789", 404),
        ("/api/v1/accounts/abc", 404),
        ("/api/v1/accounts/99999999999999999999999", 422),
        ("/api/v1/accounts/lookup?acct=nobody", 404),
        ("/api/v1/accounts/lookup?acct=erin@elsewhere.example", 404),
        ("/api/v1/accounts/lookup", 422),
    ],
)
async def test_unknown_accounts_are_clear_errors(api: PublicApi, path: str, status: int) -> None:
    await api.register_user("erin")

    answer = await api.call("GET", path)

    assert answer.status == status
    assert isinstance(answer.body["error"], str)


async def test_follow_and_unfollow_update_relationships_and_counts(api: PublicApi) -> None:
    alice, bob = await api.register_user(), await api.register_user()

    followed = await api.call("POST", f"/api/v1/accounts/{bob.id}/follow", token=alice.token)
    rel_alice = await api.call("GET", "/api/v1/accounts/relationships", token=alice.token, params=[("id[]", bob.id)])
    rel_bob = await api.call("GET", "/api/v1/accounts/relationships", token=bob.token, params={"id": alice.id})
    bob_entity = await api.call("GET", f"/api/v1/accounts/{bob.id}")

    assert followed.status == 200
    assert followed.body["following"] is True
    assert rel_alice.body[0]["following"] is True
    assert rel_alice.body[0]["followed_by"] is False
    assert rel_bob.body[0]["followed_by"] is True
    assert bob_entity.body["followers_count"] == 1

    unfollowed = await api.call("POST", f"/api/v1/accounts/{bob.id}/unfollow", token=alice.token)
    again = await api.call("POST", f"/api/v1/accounts/{bob.id}/unfollow", token=alice.token)

    assert unfollowed.body["following"] is False
    assert again.status == 200
    assert (await api.call("GET", f"/api/v1/accounts/{bob.id}")).body["followers_count"] == 0


async def test_mutual_follows_at_once_all_succeed(api: PublicApi) -> None:
    """Pairs following each other at the same moment: on PostgreSQL they once deadlocked on the counts."""
    users = [await api.register_user() for _ in range(12)]
    pairs = [(users[i], users[i + 1]) for i in range(0, len(users), 2)]

    for _ in range(3):
        follows = await asyncio.gather(
            *(api.call("POST", f"/api/v1/accounts/{b.id}/follow", token=a.token) for a, b in pairs),
            *(api.call("POST", f"/api/v1/accounts/{a.id}/follow", token=b.token) for a, b in pairs),
        )
        unfollows = await asyncio.gather(
            *(api.call("POST", f"/api/v1/accounts/{b.id}/unfollow", token=a.token) for a, b in pairs),
            *(api.call("POST", f"/api/v1/accounts/{a.id}/unfollow", token=b.token) for a, b in pairs),
        )
        assert [answer.status for answer in follows] == [200] * len(follows)
        assert [answer.status for answer in unfollows] == [200] * len(unfollows)

    counts = [await api.call("GET", f"/api/v1/accounts/{user.id}") for user in users]
    assert {(c.body["followers_count"], c.body["following_count"]) for c in counts} == {(0, 0)}


async def test_follow_mistakes_are_rejected_and_change_nothing(api: PublicApi) -> None:
    alice, bob = await api.register_user(), await api.register_user()
    await api.call("POST", f"/api/v1/accounts/{bob.id}/follow", token=alice.token)

    yourself = await api.call("POST", f"/api/v1/accounts/{alice.id}/follow", token=alice.token)
    twice = await api.call("POST", f"/api/v1/accounts/{bob.id}/follow", token=alice.token)
    unknown = await api.call("POST", "/api/v1/accounts/42/follow", token=alice.token)
    anonymous = await api.call("POST", f"/api/v1/accounts/{bob.id}/follow")

    assert yourself.status == 403
    assert twice.status == 422
    assert unknown.status == 404
    assert anonymous.status == 401
    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=alice.token)
    assert me.body["following_count"] == 1
    assert (await api.call("GET", f"/api/v1/accounts/{bob.id}")).body["followers_count"] == 1


async def test_followers_pages_with_link_headers(api: PublicApi) -> None:
    star = await api.register_user()
    fans = [await api.register_user() for _ in range(5)]
    for fan in fans:
        await api.call("POST", f"/api/v1/accounts/{star.id}/follow", token=fan.token)

    seen: list[str] = []
    path = f"/api/v1/accounts/{star.id}/followers?limit=2"
    while True:
        page = await api.call("GET", path.replace(api.base_url, ""))
        assert page.status == 200
        if not page.body:
            assert "Link" not in page.headers
            break
        seen.extend(account["id"] for account in page.body)
        link = page.headers["Link"]
        assert 'rel="prev"' in link
        path = link.split(";")[0].strip("<>")

    assert seen == [fan.id for fan in reversed(fans)]
    following = await api.call("GET", f"/api/v1/accounts/{fans[0].id}/following")
    assert [account["id"] for account in following.body] == [star.id]


async def test_relationships_list_each_account_once(api: PublicApi) -> None:
    alice, bob, carol = await api.register_user(), await api.register_user(), await api.register_user()

    answer = await api.call(
        "GET",
        "/api/v1/accounts/relationships",
        token=alice.token,
        params=[("id[]", carol.id), ("id[]", bob.id), ("id[]", carol.id), ("id", bob.id)],
    )

    assert answer.status == 200
    assert [relationship["id"] for relationship in answer.body] == [str(carol.id), str(bob.id)]
