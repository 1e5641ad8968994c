"""Changes made behind the gateway's back reach its caches through the account events.

The caches here keep entries far longer than any test, so only an event can explain
a fresh response. Each change goes straight to the account service, as another
gateway replica or the ``delete-account`` command would make it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.support.api import Answer, PublicApi
from tests.support.stack import SERVICE_TOKEN, Stack
from twitter_shared.client import SERVICE_TOKEN_HEADER
from twitter_shared.settings import ServiceName

# Events reach the gateway within a fraction of a second, and a test waits this long at most.
EVENT_WAIT_SECONDS = 5.0


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {"token_cache_seconds": 3600.0, "account_cache_seconds": 3600.0, "event_cache_seconds": 3600.0}


async def behind_the_gateway(stack: Stack, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    """Call the account service directly, as another gateway replica would, and return the status."""
    async with aiohttp.ClientSession() as session, session.request(
        method, f"{stack.url(ServiceName.ACCOUNT)}{path}", json=body, headers={SERVICE_TOKEN_HEADER: SERVICE_TOKEN}
    ) as response:
        return response.status


async def eventually(read: Callable[[], Awaitable[Answer]], expected: Callable[[Answer], bool]) -> Answer:
    """Repeat ``read`` until its response is as expected or the wait is over, and return the last response."""
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while True:
        answer = await read()
        if expected(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def introspections(stack: Stack) -> float:
    """Return how many token checks the account service has handled, from its metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"{stack.url(ServiceName.ACCOUNT)}/metrics") as response:
        text = await response.text()
    route = 'route="/internal/tokens/introspect"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("http_requests_total") and route in line)


async def test_token_checks_are_cached(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)
    before = await introspections(stack)

    for _ in range(5):
        assert (await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)).status == 200

    assert await introspections(stack) == before


async def test_revocation_elsewhere_reaches_gateway(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    assert (await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)).status == 200

    revoked = await behind_the_gateway(
        stack,
        "POST",
        "/internal/tokens/revoke",
        {"client_id": api.client_id, "client_secret": api.client_secret, "token": user.token},
    )
    after = await eventually(
        lambda: api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token), lambda answer: answer.status == 401
    )

    assert revoked == 200
    assert after.status == 401


async def test_profile_edit_elsewhere_reaches_statuses(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "before the edit"})

    edited = await behind_the_gateway(stack, "PATCH", f"/internal/accounts/{user.id}", {"display_name": "Elsewhere"})
    status = await eventually(
        lambda: api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=user.token),
        lambda answer: answer.body["account"]["display_name"] == "Elsewhere",
    )

    assert edited == 200
    assert status.body["account"]["display_name"] == "Elsewhere"


async def test_follow_elsewhere_reaches_counts(api: PublicApi, stack: Stack) -> None:
    alice, bob = await api.register_user(), await api.register_user()
    posted = await api.call("POST", "/api/v1/statuses", token=bob.token, data={"status": "counted"})
    assert posted.body["account"]["followers_count"] == 0

    followed = await behind_the_gateway(stack, "POST", f"/internal/accounts/{alice.id}/follow", {"target_id": bob.id})
    status = await eventually(
        lambda: api.call("GET", f"/api/v1/statuses/{posted.body['id']}", token=alice.token),
        lambda answer: answer.body["account"]["followers_count"] == 1,
    )

    assert followed == 200
    assert status.body["account"]["followers_count"] == 1


async def test_deleted_account_token_stops_working(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    assert (await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)).status == 200

    deleted = await behind_the_gateway(stack, "DELETE", f"/internal/accounts/{user.id}")
    after = await eventually(
        lambda: api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token), lambda answer: answer.status == 401
    )

    assert deleted == 200
    assert after.status == 401
