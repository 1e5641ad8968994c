"""Rate limits: the standard headers on every API response, 429 past the limit, registrations per address."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.api import PublicApi

BACKEND = "sqlite"


@pytest.fixture
def backend() -> str:
    # Rate limiting lives in the gateway process; the database back-end does not change it.
    return BACKEND


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {
        "rate_limit_enabled": True,
        "rate_limit_requests": 8,
        "rate_limit_period_seconds": 3600,
        "registration_limit": 2,
        "registration_period_seconds": 3600,
    }


async def test_every_api_answer_carries_all_three_headers(api: PublicApi) -> None:
    answer = await api.call("GET", "/api/v1/instance")

    assert answer.headers["X-RateLimit-Limit"] == "8"
    assert int(answer.headers["X-RateLimit-Remaining"]) < 8
    assert datetime.fromisoformat(answer.headers["X-RateLimit-Reset"].replace("Z", "+00:00")).tzinfo is not None


async def test_requests_past_the_limit_get_429(api: PublicApi) -> None:
    statuses = [(await api.call("GET", "/api/v1/instance")).status for _ in range(10)]

    assert 429 in statuses
    limited = await api.call("GET", "/api/v1/instance")
    assert limited.status == 429
    assert limited.body == {"error": "Too many requests"}
    assert limited.headers["X-RateLimit-Remaining"] == "0"


async def test_registrations_are_limited_per_address(api: PublicApi) -> None:
    answers = []
    for number in range(3):
        answers.append(
            await api.call(
                "POST",
                "/api/v1/accounts",
                token=api.app_token,
                data={"username": f"reg{number}", "email": f"reg{number}@example.org", "password": "long enough pw", "agreement": "1"},
            )
        )

    assert [a.status for a in answers] == [200, 200, 429]


async def test_health_routes_are_not_rate_limited(api: PublicApi) -> None:
    for _ in range(12):
        answer = await api.call("GET", "/healthz")
        assert answer.status == 200
        assert "X-RateLimit-Limit" not in answer.headers

