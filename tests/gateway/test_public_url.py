"""Public links come from TWITTER_PUBLIC_URL when it is set, never from a client's Host header."""

from __future__ import annotations

import pytest

from tests.support.api import PublicApi


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {"public_url": "https://social.example"}


async def test_host_header_does_not_change_links(api: PublicApi) -> None:
    user = await api.register_user("hosted")
    for number in range(3):
        await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": f"post {number}"})

    account = await api.call("GET", f"/api/v1/accounts/{user.id}", headers={"Host": "evil.example"})
    statuses = await api.call("GET", f"/api/v1/accounts/{user.id}/statuses?limit=1", headers={"Host": "evil.example"})

    assert account.body["url"] == "https://social.example/@hosted"
    assert statuses.body[0]["uri"].startswith("https://social.example/users/hosted/statuses/")
    assert statuses.headers["Link"].startswith("<https://social.example/api/v1/accounts/")
