"""The calls a batch of home reads makes: grouped by page, mapped back to each read and checked.

Services older than the gateway (met during a rolling upgrade) get one call per read instead."""

from __future__ import annotations

from typing import Any

import pytest

from twitter_gateway import batching
from twitter_shared.errors import NotFound, UpstreamError
from twitter_shared.pagination import PageRequest

FIRST_PAGE = PageRequest(limit=20)
OLDER_PAGE = PageRequest(max_id=500, limit=20)


def page_of(owner_id: int, params: dict[str, str]) -> list[str]:
    """The page a fake timeline service holds for an owner: its id, then the bound."""
    return [str(owner_id), params.get("max_id", "top")]


class FakeService:
    """Responds like the timeline and post services. ``old`` ones lack the batch routes, and ``answer`` replaces their batch responses."""

    def __init__(self, *, old: bool = False, answer: Any = None, newest_route_missing: bool = False) -> None:
        self.old = old
        self.newest_route_missing = newest_route_missing or old
        self.answer = answer
        self.calls: list[tuple[str, str, Any]] = []

    async def get(self, path: str, *, params: dict[str, str]) -> Any:
        self.calls.append(("GET", path, params))
        if path == "/internal/timelines":
            if self.old:
                raise NotFound()
            if self.answer is not None:
                return self.answer
            return {"pages": [page_of(int(owner), params) for owner in params["owner_ids"].split(",")]}
        if path.startswith("/internal/timelines/"):
            return page_of(int(path.rsplit("/", 1)[1]), params)
        if path.startswith("/internal/accounts/"):
            return {"statuses": [path.split("/")[3], params["exclude_replies"]], "author_stats": {"viewer": params.get("viewer_id")}}
        return {"statuses": params["ids"].split(","), "author_stats": {"viewer": params["viewer_id"]}}

    async def post(self, path: str, *, body: dict[str, Any], idempotent: bool) -> Any:
        self.calls.append(("POST", path, body))
        assert idempotent
        if self.old:
            raise NotFound()
        if self.answer is not None:
            return self.answer
        if path == "/internal/statuses/pages":
            if self.newest_route_missing:
                raise NotFound()
            lookups = await self.post("/internal/statuses/lookups", body={"lookups": body["lookups"]}, idempotent=True)
            pages = await self.post("/internal/accounts/statuses/lookups", body={"lookups": body["account_pages"]}, idempotent=True)
            self.calls[-2:] = []
            return {"lookups": lookups["results"], "account_pages": pages["results"]}
        if path == "/internal/accounts/statuses/lookups":
            return {"results": [
                {"statuses": [item["account_id"], str(item["exclude_replies"]).lower()], "author_stats": {"viewer": item["viewer_id"]}}
                for item in body["lookups"]
            ]}
        return {"results": [{"statuses": item["ids"], "author_stats": {"viewer": item["viewer_id"]}} for item in body["lookups"]]}


@pytest.mark.parametrize("old", [False, True], ids=["batch-route", "older-service"])
async def test_timeline_pages_grouped_by_page(old: bool) -> None:
    service = FakeService(old=old)
    keys = [(1, FIRST_PAGE), (2, OLDER_PAGE), (3, FIRST_PAGE), (1, FIRST_PAGE)]

    pages = await batching._timeline_pages(service, keys)  # type: ignore[arg-type]

    assert pages == [["1", "top"], ["2", "500"], ["3", "top"], ["1", "top"]]
    batch_calls = [params["owner_ids"] for _, path, params in service.calls if path == "/internal/timelines"]
    assert sorted(batch_calls) == ["1,3,1", "2"]
    single_calls = [path for _, path, _ in service.calls if path != "/internal/timelines"]
    assert len(single_calls) == (4 if old else 0)


@pytest.mark.parametrize("old", [False, True], ids=["batch-route", "older-service"])
async def test_status_lookups_keep_each_viewer(old: bool) -> None:
    service = FakeService(old=old)
    keys = [(("10", "11"), 1, ("11",)), (("11",), 2, ())]

    results = await batching._status_lookups(service, keys)  # type: ignore[arg-type]

    assert results == [
        {"statuses": ["10", "11"], "author_stats": {"viewer": "1"}},
        {"statuses": ["11"], "author_stats": {"viewer": "2"}},
    ]
    assert [method for method, _, _ in service.calls] == (["POST", "GET", "GET"] if old else ["POST"])
    if not old:
        assert [lookup["known"] for lookup in service.calls[0][2]["lookups"]] == [["11"], []]


@pytest.mark.parametrize("old", [False, True], ids=["batch-route", "older-service"])
async def test_account_pages_keep_each_reader(old: bool) -> None:
    service = FakeService(old=old)
    keys = [(7, FIRST_PAGE, False, False, 1), (8, OLDER_PAGE, True, False, None)]

    results = await batching._account_pages(service, keys)  # type: ignore[arg-type]

    assert results == [
        {"statuses": ["7", "false"], "author_stats": {"viewer": "1"}},
        {"statuses": ["8", "true"], "author_stats": {"viewer": None}},
    ]
    assert [method for method, _, _ in service.calls] == (["POST", "GET", "GET"] if old else ["POST"])


@pytest.mark.parametrize(
    ("old", "newest_route_missing", "expected_calls"),
    [
        (False, False, ["/internal/statuses/pages"]),
        (False, True, ["/internal/statuses/pages", "/internal/statuses/lookups", "/internal/accounts/statuses/lookups"]),
        (True, True, ["/internal/statuses/pages", "/internal/statuses/lookups", "/internal/accounts/statuses/lookups"]),
    ],
    ids=["pages-route", "lookup-routes", "single-routes"],
)
async def test_post_pages_keep_each_read(old: bool, newest_route_missing: bool, expected_calls: list[str]) -> None:
    service = FakeService(old=old, newest_route_missing=newest_route_missing)
    keys = [
        (batching.ACCOUNT_PAGE, (7, FIRST_PAGE, False, False, 1)),
        (batching.LOOKUP, (("10", "11"), 1, ("11",))),
        (batching.ACCOUNT_PAGE, (8, OLDER_PAGE, True, False, None)),
        (batching.LOOKUP, (("12",), 2, ())),
    ]

    results = await batching._post_pages(service, keys)  # type: ignore[arg-type]

    assert results == [
        {"statuses": ["7", "false"], "author_stats": {"viewer": "1"}},
        {"statuses": ["10", "11"], "author_stats": {"viewer": "1"}},
        {"statuses": ["8", "true"], "author_stats": {"viewer": None}},
        {"statuses": ["12"], "author_stats": {"viewer": "2"}},
    ]
    assert [path for _, path, _ in service.calls if "lookups" in path or "pages" in path] == expected_calls


async def test_post_pages_of_one_kind() -> None:
    service = FakeService(newest_route_missing=True)

    results = await batching._post_pages(service, [(batching.LOOKUP, (("5",), 1, ()))])  # type: ignore[arg-type]

    assert results == [{"statuses": ["5"], "author_stats": {"viewer": "1"}}]
    assert [path for _, path, _ in service.calls] == ["/internal/statuses/pages", "/internal/statuses/lookups"]


@pytest.mark.parametrize(
    "answer",
    [["not", "an", "object"], {"pages": "x", "results": "x"}, {"pages": [[]], "results": [{}]}, {}],
    ids=["list", "not-a-list", "one-answer-for-two", "empty"],
)
async def test_unreadable_batch_response_is_502(answer: Any) -> None:
    service = FakeService(answer=answer)

    with pytest.raises(UpstreamError, match="timeline service returned an unreadable response"):
        await batching._timeline_pages(service, [(1, FIRST_PAGE), (2, FIRST_PAGE)])  # type: ignore[arg-type]
    with pytest.raises(UpstreamError, match="post service returned an unreadable response"):
        await batching._status_lookups(service, [(("1",), 1, ()), (("2",), 2, ())])  # type: ignore[arg-type]
    with pytest.raises(UpstreamError, match="post service returned an unreadable response"):
        await batching._account_pages(service, [(1, FIRST_PAGE, False, False, 1), (2, FIRST_PAGE, False, False, None)])  # type: ignore[arg-type]
    with pytest.raises(UpstreamError, match="post service returned an unreadable response"):
        await batching._post_pages(service, [(batching.LOOKUP, (("1",), 1, ())), (batching.ACCOUNT_PAGE, (2, FIRST_PAGE, False, False, None))])  # type: ignore[arg-type]
