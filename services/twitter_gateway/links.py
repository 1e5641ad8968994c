"""The ``Link`` header of paginated lists: ``rel="next"`` (older) and ``rel="prev"`` (newer)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from yarl import URL

from twitter_gateway.hydrate import base_url


def pagination_link(
    request: web.Request, *, newest_cursor: str | None, oldest_cursor: str | None, limit: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the Link header for a page whose items span the two cursors; none for an empty page."""
    if newest_cursor is None or oldest_cursor is None:
        return {}
    base = URL(base_url(request)).with_path(request.path)
    kept = {key: value for key, value in (extra or {}).items()}
    next_url = base.with_query({**kept, "limit": str(limit), "max_id": oldest_cursor})
    prev_url = base.with_query({**kept, "limit": str(limit), "min_id": newest_cursor})
    return {"Link": f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'}
