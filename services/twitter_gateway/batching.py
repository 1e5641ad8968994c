"""Page reads of concurrent requests, sent to the timeline and post services in shared calls.

A home read makes two internal calls: a page of the timeline, then its statuses.
An account statuses read makes one, to the post service. Under load the gateway
has many such reads at the same step, and one call for several of them costs the
services much less than one each (see ``twitter_shared.coalesce``). Home reads'
statuses and account statuses pages share the post service's calls. The sizes of
the batches sent are in ``/metrics`` as ``gateway_batch_size``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import Histogram

from twitter_shared.client import InternalClient
from twitter_shared.coalesce import Coalescer
from twitter_shared.errors import NotFound, UpstreamError
from twitter_shared.pagination import PageRequest
from twitter_shared.runtime import client
from twitter_shared.settings import ServiceName
from twitter_shared.web import METRICS

# With eight keys per batch, 32 concurrent home reads make several batches in flight, so the
# gateway and the services work at the same time. Larger batches gave fewer reads per second
# (measured on two cores: 2,156/s with 8, 1,914/s with 64).
MAX_BATCH = 8

TimelineKey = tuple[int, PageRequest]
# Status ids, viewer id, and the ids among them whose templates the reader has (see ``render_json.known_templates``).
LookupKey = tuple[tuple[str, ...], int, tuple[str, ...]]
# Account id, page, the exclude_replies and exclude_reblogs flags, viewer id (None for an anonymous reader).
AccountPageKey = tuple[int, PageRequest, bool, bool, int | None]
# The page a read requests from the post service: ``(LOOKUP, LookupKey)`` or ``(ACCOUNT_PAGE, AccountPageKey)``.
PostPageKey = tuple[str, LookupKey | AccountPageKey]
LOOKUP = "lookup"
ACCOUNT_PAGE = "account_page"

TIMELINE_PAGES = web.AppKey("timeline_pages", Coalescer)
POST_PAGES = web.AppKey("post_pages", Coalescer)


async def batching_context(app: web.Application) -> AsyncIterator[None]:
    """Create the coalescers once the internal clients exist (after ``use_clients``)."""
    sizes = Histogram(
        "gateway_batch_size",
        "Requests served by one batched internal call",
        ["call"],
        buckets=(1, 2, 4, 8, 16, 32, 64),
        registry=app[METRICS].registry,
    )
    timelines = client(app, ServiceName.TIMELINE)
    posts = client(app, ServiceName.POST)
    app[TIMELINE_PAGES] = Coalescer(
        "timeline_pages",
        lambda keys: _timeline_pages(timelines, keys),
        max_batch=MAX_BATCH,
        observe=sizes.labels("timeline_pages").observe,
    )
    app[POST_PAGES] = Coalescer(
        "post_pages",
        lambda keys: _post_pages(posts, keys),
        max_batch=MAX_BATCH,
        observe=sizes.labels("post_pages").observe,
    )
    yield


async def timeline_page(request: web.Request, owner_id: int, page: PageRequest) -> list[str]:
    """Return the status ids of a page of ``owner_id``'s home timeline."""
    return await request.app[TIMELINE_PAGES].load((owner_id, page))


async def statuses_with_author_stats(
    request: web.Request, ids: list[str], viewer_id: int, *, known: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Return ``{"statuses": [...], "author_stats": {...}}`` for ``ids``, with ``viewer_id``'s flags.

    The ``known`` statuses may come compact, without their fixed fields.
    """
    return await request.app[POST_PAGES].load((LOOKUP, (tuple(ids), viewer_id, known)))


async def account_page(request: web.Request, key: AccountPageKey) -> dict[str, Any]:
    """Return ``{"statuses": [...], "author_stats": {...}}`` for a page of an account's statuses."""
    return await request.app[POST_PAGES].load((ACCOUNT_PAGE, key))


async def _timeline_pages(timelines: InternalClient, keys: list[TimelineKey]) -> list[list[str]]:
    # Only owners asking for the same page share a call.
    owners_by_page: dict[PageRequest, list[int]] = {}
    for owner_id, page in keys:
        owners_by_page.setdefault(page, []).append(owner_id)
    pages_per_call = await asyncio.gather(*(_same_page(timelines, page, owners) for page, owners in owners_by_page.items()))
    pages: dict[TimelineKey, list[str]] = {}
    for (page, owners), owner_pages in zip(owners_by_page.items(), pages_per_call, strict=True):
        for owner_id, ids in zip(owners, owner_pages, strict=True):
            pages[(owner_id, page)] = ids
    return [pages[key] for key in keys]


async def _same_page(timelines: InternalClient, page: PageRequest, owners: list[int]) -> list[list[str]]:
    try:
        response = await timelines.get("/internal/timelines", params={**page.as_params(), "owner_ids": ",".join(map(str, owners))})
    except NotFound:
        # A timeline service older than this gateway, met during a rolling upgrade, has no batch route.
        singles = (timelines.get(f"/internal/timelines/{owner}", params=page.as_params()) for owner in owners)
        return list(await asyncio.gather(*singles))
    return _results(response, "pages", len(owners), ServiceName.TIMELINE)


async def _post_pages(posts: InternalClient, keys: list[PostPageKey]) -> list[dict[str, Any]]:
    """Read the look-ups and account pages of concurrent reads in one call to the post service."""
    lookups = [key for kind, key in keys if kind == LOOKUP]
    account_pages = [key for kind, key in keys if kind == ACCOUNT_PAGE]
    body = {"lookups": _lookup_items(lookups), "account_pages": _account_page_items(account_pages)}
    try:
        response = await posts.post("/internal/statuses/pages", body=body, idempotent=True)
    except NotFound:
        # A post service older than this gateway has only the routes for one kind of page each.
        lookup_results, page_results = await asyncio.gather(
            _status_lookups(posts, lookups) if lookups else _nothing(),
            _account_pages(posts, account_pages) if account_pages else _nothing(),
        )
    else:
        lookup_results = _results(response, "lookups", len(lookups), ServiceName.POST)
        page_results = _results(response, "account_pages", len(account_pages), ServiceName.POST)
    by_kind = {LOOKUP: iter(lookup_results), ACCOUNT_PAGE: iter(page_results)}
    return [next(by_kind[kind]) for kind, _ in keys]


async def _nothing() -> list[dict[str, Any]]:
    return []


def _lookup_items(keys: list[LookupKey]) -> list[dict[str, Any]]:
    return [{"ids": list(ids), "viewer_id": str(viewer_id), "known": list(known)} for ids, viewer_id, known in keys]


def _account_page_items(keys: list[AccountPageKey]) -> list[dict[str, Any]]:
    return [
        {
            **page.as_params(),
            "account_id": str(account_id),
            "viewer_id": str(viewer_id) if viewer_id is not None else None,
            "exclude_replies": exclude_replies,
            "exclude_reblogs": exclude_reblogs,
        }
        for account_id, page, exclude_replies, exclude_reblogs, viewer_id in keys
    ]


async def _status_lookups(posts: InternalClient, keys: list[LookupKey]) -> list[dict[str, Any]]:
    try:
        response = await posts.post("/internal/statuses/lookups", body={"lookups": _lookup_items(keys)}, idempotent=True)
    except NotFound:
        # As in ``_same_page``: a post service older than this gateway gets one call per look-up.
        return list(await asyncio.gather(*(
            posts.get("/internal/statuses", params={"ids": ",".join(ids), "viewer_id": str(viewer_id), "author_stats": "true"})
            for ids, viewer_id, _ in keys
        )))
    return _results(response, "results", len(keys), ServiceName.POST)


async def _account_pages(posts: InternalClient, keys: list[AccountPageKey]) -> list[dict[str, Any]]:
    try:
        response = await posts.post(
            "/internal/accounts/statuses/lookups", body={"lookups": _account_page_items(keys)}, idempotent=True
        )
    except NotFound:
        # As in ``_same_page``: a post service older than this gateway gets one call per page.
        return list(await asyncio.gather(*(_account_page_alone(posts, key) for key in keys)))
    return _results(response, "results", len(keys), ServiceName.POST)


async def _account_page_alone(posts: InternalClient, key: AccountPageKey) -> dict[str, Any]:
    account_id, page, exclude_replies, exclude_reblogs, viewer_id = key
    params = {
        **page.as_params(),
        "exclude_replies": str(exclude_replies).lower(),
        "exclude_reblogs": str(exclude_reblogs).lower(),
        "author_stats": "true",
    }
    if viewer_id is not None:
        params["viewer_id"] = str(viewer_id)
    return await posts.get(f"/internal/accounts/{account_id}/statuses", params=params)


def _results(response: Any, field: str, expected: int, service: ServiceName) -> list[Any]:
    """Return ``response[field]``, a list with one item per key sent, or fail as an unreadable response."""
    items = response.get(field) if isinstance(response, dict) else None
    if not isinstance(items, list) or len(items) != expected:
        raise UpstreamError(f"The {service} service returned an unreadable response")
    return items
