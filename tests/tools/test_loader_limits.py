"""The loader against a system whose rate limits are on: it stops at the first 429 and names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import free_port
from tests.support.stack import Stack
from twitter_shared.settings import ServiceName
from twitter_tools._public_client import RateLimited, Unreachable
from twitter_tools.loader import LoadOptions, load


@pytest.fixture
def backend() -> str:
    # Rate limiting lives in the gateway process; the database back-end does not change it.
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": True, "registration_limit": 2, "registration_period_seconds": 3600}


async def test_loader_stops_at_a_rate_limit_with_advice(stack: Stack, tmp_path: Path) -> None:
    options = LoadOptions(base_url=stack.url(ServiceName.GATEWAY), node_limit=5, max_tweets=0, tokens_path=tmp_path / "tokens.json")

    with pytest.raises(RateLimited) as raised:
        await load(options)

    assert "429" in str(raised.value)
    assert "TWITTER_RATE_LIMIT_ENABLED=false" in str(raised.value)


async def test_loader_without_a_system_raises_unreachable(tmp_path: Path) -> None:
    options = LoadOptions(base_url=f"http://127.0.0.1:{free_port()}", tokens_path=tmp_path / "tokens.json")

    with pytest.raises(Unreachable, match="/api/v1/instance failed"):
        await load(options)

    assert not (tmp_path / "tokens.json").exists()
