"""Without TWITTER_PUBLIC_URL, links follow the Host header, which must be a plain host with an optional port."""

from __future__ import annotations

import pytest

from tests.support.api import PublicApi

INVALID_HOST = "Invalid Host header: send a plain host name or address of at most 253 characters, with an optional port"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("social.example", "http://social.example"),
        ("social.example:8443", "http://social.example:8443"),
        ("127.0.0.1:30080", "http://127.0.0.1:30080"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61, "http://" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61),
    ],
    ids=["name", "name-and-port", "address", "ipv6", "longest-name"],
)
async def test_links_follow_plain_host(api: PublicApi, host: str, origin: str) -> None:
    user = await api.register_user()
    await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "hosted"})

    answer = await api.call("GET", f"/api/v1/accounts/{user.id}/statuses", headers={"Host": host})

    assert answer.status == 200
    assert answer.body[0]["url"].startswith(f"{origin}/@")
    assert answer.body[0]["account"]["avatar"].startswith(origin)


@pytest.mark.parametrize(
    "host",
    ["a" * 300, "x" * 7300 + ".example", "a" * 250 + ".example:8080", "a" * 250 + ".exam", "bad_host!", "a b"],
    ids=["300-characters", "7-kilobytes", "long-with-port", "254-characters", "punctuation", "space"],
)
async def test_long_host_is_rejected(api: PublicApi, host: str) -> None:
    user = await api.register_user()
    await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "hosted"})

    statuses = await api.call("GET", f"/api/v1/accounts/{user.id}/statuses", headers={"Host": host})
    home = await api.call("GET", "/api/v1/timelines/home", token=user.token, headers={"Host": host})

    assert (statuses.status, statuses.body) == (400, {"error": INVALID_HOST})
    assert (home.status, home.body) == (400, {"error": INVALID_HOST})


async def test_invalid_host_changes_nothing(api: PublicApi) -> None:
    user = await api.register_user()
    saved = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "saved"})
    bad = {"Host": "bad_host"}

    posted = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "not saved"}, headers=bad)
    favourited = await api.call("POST", f"/api/v1/statuses/{saved.body['id']}/favourite", token=user.token, headers=bad)
    deleted = await api.call("DELETE", f"/api/v1/statuses/{saved.body['id']}", token=user.token, headers=bad)
    statuses = await api.call("GET", f"/api/v1/accounts/{user.id}/statuses")

    assert [answer.status for answer in (posted, favourited, deleted)] == [400, 400, 400]
    assert posted.body == {"error": INVALID_HOST}
    assert [status["content"] for status in statuses.body] == ["<p>saved</p>"]
    assert statuses.body[0]["favourites_count"] == 0


async def test_probes_ignore_the_host(api: PublicApi) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        answer = await api.call("GET", path, headers={"Host": "bad_host"})

        assert answer.status == 200, path
