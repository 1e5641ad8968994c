"""The Link header of paginated lists and the base URL it starts with, on requests built in memory."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from twitter_gateway.hydrate import base_url
from twitter_gateway.links import pagination_link
from twitter_shared.errors import BadRequest
from twitter_shared.runtime import SETTINGS
from twitter_shared.settings import Settings


def request_to(path: str, *, host: str = "social.example", public_url: str | None = None) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(public_url=public_url)
    return make_mocked_request("GET", path, headers={"Host": host}, app=app)


def test_link_has_next_and_prev() -> None:
    request = request_to("/api/v1/timelines/home?limit=5")

    link = pagination_link(request, newest_cursor="900", oldest_cursor="100", limit=5)

    assert link == {
        "Link": '<http://social.example/api/v1/timelines/home?limit=5&max_id=100>; rel="next", '
        '<http://social.example/api/v1/timelines/home?limit=5&min_id=900>; rel="prev"'
    }


def test_link_keeps_extra_parameters() -> None:
    request = request_to("/api/v1/accounts/7/statuses")

    link = pagination_link(
        request, newest_cursor="9", oldest_cursor="3", limit=20, extra={"exclude_replies": "true", "tagged": "a b&c"}
    )["Link"]

    assert "<http://social.example/api/v1/accounts/7/statuses?exclude_replies=true&tagged=a+b%26c&limit=20&max_id=3>" in link


def test_link_quotes_the_path() -> None:
    request = request_to("/api/v1/accounts/%C3%A9 x/statuses")

    link = pagination_link(request, newest_cursor="2", oldest_cursor="1", limit=20)["Link"]

    assert link.startswith("<http://social.example/api/v1/accounts/%C3%A9%20x/statuses?limit=20&max_id=1>")


def test_empty_page_has_no_link() -> None:
    assert pagination_link(request_to("/api/v1/timelines/home"), newest_cursor=None, oldest_cursor=None, limit=20) == {}


def test_link_keeps_public_url_path() -> None:
    # Statuses and accounts link below the configured URL's path, and so does the Link header.
    request = request_to("/api/v1/timelines/home", public_url="https://social.example/town")

    link = pagination_link(request, newest_cursor="2", oldest_cursor="1", limit=20)["Link"]

    assert link.startswith("<https://social.example/town/api/v1/timelines/home?limit=20&max_id=1>")


def test_base_url_follows_each_host() -> None:
    hosts = ["one.example", "two.example:8443", "one.example", "[::1]:8080", "two.example:8443"]

    origins = [base_url(request_to("/api/v1/timelines/home", host=host)) for host in hosts]

    assert origins == [
        "http://one.example",
        "http://two.example:8443",
        "http://one.example",
        "http://[::1]:8080",
        "http://two.example:8443",
    ]


def test_invalid_host_rejected_each_time() -> None:
    for _ in range(2):
        with pytest.raises(BadRequest):
            base_url(request_to("/api/v1/timelines/home", host="bad_host"))
    assert base_url(request_to("/api/v1/timelines/home", host="good.example")) == "http://good.example"


@pytest.mark.parametrize(
    "public_url",
    ["social.example", "ftp://social.example", "https://", "https://social.example/a b", "https://social.example/?x=1", "https://social.example/#top", "https://é.example"],
    ids=["no-scheme", "ftp", "no-host", "space", "query", "fragment", "not-ascii"],
)
def test_public_url_needing_quoting_is_rejected(public_url: str) -> None:
    with pytest.raises(ValueError, match="must be an http:// or https:// URL with a host"):
        Settings(public_url=public_url)


def test_public_url_keeps_path_without_slash() -> None:
    assert Settings(public_url="https://social.example/town/").public_url == "https://social.example/town"
