"""Internal HTTP handlers of the timeline service: home timeline pages, progress and trimming."""

from __future__ import annotations

from aiohttp import web

from twitter_shared.consumer import read_cursor
from twitter_shared.database import read_only
from twitter_shared.errors import ValidationFailed
from twitter_shared.outbox import BEYOND_ANY_POSITION
from twitter_shared.pagination import parse_id, parse_page, query_ids
from twitter_shared.runtime import ENGINE, SETTINGS, client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response
from twitter_timeline import store
from twitter_timeline.tables import consumer_cursors

DEFAULT_PAGE = 20
MAX_PAGE = 40
SOURCES = (ServiceName.ACCOUNT, ServiceName.POST)


async def home_timeline(request: web.Request) -> web.Response:
    owner_id = parse_id(request.match_info["owner_id"], name="owner_id")
    assert owner_id is not None  # the route pattern only matches digits
    page = parse_page(request.query, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)
    return json_response(await store.timeline_page(request.app[ENGINE], owner_id, page=page))


async def home_timelines(request: web.Request) -> web.Response:
    """Return the same page of several owners' timelines: ``{"pages": [[id, ...], ...]}`` in ``owner_ids`` order."""
    owner_ids = query_ids(request, "owner_ids")
    if not owner_ids:
        raise ValidationFailed("owner_ids is required: a comma-separated list of account ids")
    page = parse_page(request.query, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)
    return json_response({"pages": await store.timeline_pages(request.app[ENGINE], owner_ids, page=page)})


async def progress(request: web.Request) -> web.Response:
    """Report each consumer's cursor against its source's head; ``caught_up`` when no event waits."""
    async with read_only(request.app[ENGINE]) as connection:
        cursors = {source: await read_cursor(connection, consumer_cursors, source) for source in SOURCES}
    heads = {}
    for source in SOURCES:
        answer = await client(request.app, source).get("/internal/events", params={"after": BEYOND_ANY_POSITION, "limit": 1})
        heads[source] = int(answer["head"])
    return json_response({
        "account": cursors[ServiceName.ACCOUNT],
        "post": cursors[ServiceName.POST],
        "account_head": heads[ServiceName.ACCOUNT],
        "post_head": heads[ServiceName.POST],
        "caught_up": all(cursors[source] >= heads[source] for source in SOURCES),
    })


async def trim(request: web.Request) -> web.Response:
    removed = await store.trim_timelines(request.app[ENGINE], cap=request.app[SETTINGS].timeline_max_entries)
    return json_response({"removed": removed})
