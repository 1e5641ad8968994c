"""The ``Link`` header of paginated lists: ``rel="next"`` (older) and ``rel="prev"`` (newer)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from aiohttp import web

from twitter_gateway.hydrate import base_url


def pagination_link(
    request: web.Request, *, newest_cursor: str | None, oldest_cursor: str | None, limit: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the Link header for a page whose items span the two cursors; none for an empty page."""
    if newest_cursor is None or oldest_cursor is None:
        return {}
    # Formatted by hand: building the two URLs with yarl cost a fortieth of a home read.
    page_url = base_url(request) + quote(request.path)
    page_query = {**(extra or {}), "limit": str(limit)}
    next_query = urlencode({**page_query, "max_id": oldest_cursor})
    prev_query = urlencode({**page_query, "min_id": newest_cursor})
    return {"Link": f'<{page_url}?{next_query}>; rel="next", <{page_url}?{prev_query}>; rel="prev"'}
