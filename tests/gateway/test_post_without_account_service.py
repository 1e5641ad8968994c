"""A post while the account service is down fails before anything is saved, so a retry cannot post twice."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import PublicApi
from tests.support.stack import Stack
from twitter_shared.settings import ServiceName


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    # The token stays trusted, but the author's account record must be read again for every post.
    return {"token_cache_seconds": 3600.0, "account_cache_seconds": 0.0}


async def test_post_refused_with_nothing_saved(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    first = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "before the outage"})
    await stack.stop(ServiceName.ACCOUNT)

    during = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "during the outage"})

    await stack.start(ServiceName.ACCOUNT)
    # The circuit breaker lets a trial call through once its reset period (0.5 s in tests) has passed.
    for _ in range(50):
        listed = await api.call("GET", f"/api/v1/accounts/{first.body['account']['id']}/statuses", token=user.token)
        if listed.status == 200:
            break
        await asyncio.sleep(0.1)

    assert first.status == 200
    assert during.status == 503
    assert [status["content"] for status in listed.body] == ["<p>before the outage</p>"]
