"""Behind a trusted reverse proxy, rate limits count the address the proxy saw, not the proxy's own."""

from __future__ import annotations

import pytest

from tests.support.api import PublicApi


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": True, "registration_limit": 1, "trusted_proxies": 1}


async def register(api: PublicApi, username: str, forwarded_for: str) -> int:
    answer = await api.call(
        "POST",
        "/api/v1/accounts",
        token=api.app_token,
        data={"username": username, "email": f"{username}@example.org", "password": "long enough pw", "agreement": "1"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return answer.status


async def test_each_forwarded_address_has_its_own_budget(api: PublicApi) -> None:
    first = await register(api, "first", "203.0.113.1")
    second = await register(api, "second", "203.0.113.2")
    again = await register(api, "again", "203.0.113.1")

    assert (first, second, again) == (200, 200, 429)


async def test_forged_entries_left_of_the_proxys_are_ignored(api: PublicApi) -> None:
    first = await register(api, "first", "198.51.100.1, 203.0.113.1")
    forged = await register(api, "forged", "198.51.100.2, 203.0.113.1")

    assert (first, forged) == (200, 429)
