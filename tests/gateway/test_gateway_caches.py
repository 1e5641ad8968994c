"""The gateway's token and account caches: changes made through the gateway show at once, however long the caches.

The gateway here does not follow the account events, so only the entries it drops itself can explain
a fresh response (``test_account_events`` covers the changes made elsewhere).
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.api import PublicApi
from tests.support.stack import SERVICE_TOKEN, Stack
from twitter_shared.client import SERVICE_TOKEN_HEADER
from twitter_shared.settings import ServiceName


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    # Far longer than any test, so only an explicit forget can explain a fresh response.
    return {"token_cache_seconds": 3600.0, "account_cache_seconds": 3600.0, "event_cache_seconds": 0.0}


async def test_revoked_token_stops_working_at_once(api: PublicApi) -> None:
    user = await api.register_user()
    assert (await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)).status == 200

    revoked = await api.call(
        "POST", "/oauth/revoke", data={"client_id": api.client_id, "client_secret": api.client_secret, "token": user.token}
    )
    after = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)

    assert revoked.status == 200
    assert after.status == 401


async def test_follow_and_unfollow_update_counts_in_rendered_statuses(api: PublicApi) -> None:
    alice, bob = await api.register_user(), await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=bob.token, data={"status": "counted"})
    assert posted.body["account"]["followers_count"] == 0

    await api.call("POST", f"/api/v1/accounts/{bob.id}/follow", token=alice.token)
    followed = await api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=alice.token)
    await api.call("POST", f"/api/v1/accounts/{bob.id}/unfollow", token=alice.token)
    unfollowed = await api.call("GET", f"/api/v1/accounts/{bob.id}/statuses", token=alice.token)

    assert followed.body["account"]["followers_count"] == 1
    assert unfollowed.body[0]["account"]["followers_count"] == 0


async def test_profile_edit_shows_in_statuses_at_once(api: PublicApi) -> None:
    user = await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "before the edit"})
    assert posted.body["account"]["display_name"] != "Edited"

    await api.call("PATCH", "/api/v1/accounts/update_credentials", token=user.token, data={"display_name": "Edited"})
    status = await api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=user.token)

    assert status.body["account"]["display_name"] == "Edited"


async def test_statuses_reuse_cached_authors(api: PublicApi, stack: Stack) -> None:
    """The cache is really used: an edit made behind the gateway's back stays unseen in statuses."""
    user = await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "cached"})
    async with aiohttp.ClientSession() as session, session.patch(
        f"{stack.url(ServiceName.ACCOUNT)}/internal/accounts/{user.id}",
        json={"display_name": "Behind"},
        headers={SERVICE_TOKEN_HEADER: SERVICE_TOKEN},
    ) as edited:
        assert edited.status == 200

    status = await api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=user.token)
    account = await api.call("GET", f"/api/v1/accounts/{user.id}")

    assert status.body["account"]["display_name"] != "Behind"
    assert account.body["display_name"] == "Behind"
