"""Mastodon-style id pagination: ``max_id``, ``since_id``, ``min_id``, ``limit``, newest first.

``max_id`` pages backwards (older), ``since_id`` returns the newest items above a
bound, and ``min_id`` returns the items just above a bound (the page that follows
it in time). Cursors are plain numeric bounds, so a cursor that points at a
deleted item still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, Select

from twitter_shared.errors import ValidationFailed

MAX_ID_VALUE = (1 << 63) - 1
MAX_BATCH_IDS = 200


@dataclass(frozen=True)
class PageRequest:
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = 20

    def as_params(self) -> dict[str, str]:
        params = {"limit": str(self.limit)}
        for name in ("max_id", "since_id", "min_id"):
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value)
        return params

    def apply(self, query: Select, column: ColumnElement) -> Select:
        """Add bounds, order and limit to ``query``; reverse a ``min_id`` page with ``newest_first``."""
        if self.max_id is not None:
            query = query.where(column < self.max_id)
        if self.since_id is not None:
            query = query.where(column > self.since_id)
        if self.min_id is not None:
            query = query.where(column > self.min_id)
            return query.order_by(column.asc()).limit(self.limit)
        return query.order_by(column.desc()).limit(self.limit)

    @property
    def shape(self) -> tuple[bool, bool, bool]:
        """The bounds that are set (max, since, min): the key of a read built once with ``bound_sql``."""
        return (self.max_id is not None, self.since_id is not None, self.min_id is not None)

    def bound_values(self) -> dict[str, int]:
        """Return the values of the parameters that ``bound_sql`` adds."""
        values = {"page_limit": self.limit}
        for name in ("max_id", "since_id", "min_id"):
            value = getattr(self, name)
            if value is not None:
                values[f"page_{name}"] = value
        return values

    def newest_first(self, items: list[Any]) -> list[Any]:
        return list(reversed(items)) if self.min_id is not None else items


def bound_sql(column: str, shape: tuple[bool, bool, bool]) -> str:
    """Like ``PageRequest.apply``, as SQL text with ``:page_*`` parameters (see ``bound_values``).

    Append it to a read that already has a WHERE clause; hot reads build it once per shape
    for ``twitter_shared.driver_query``.
    """
    has_max, has_since, has_min = shape
    clauses = []
    if has_max:
        clauses.append(f" AND {column} < :page_max_id")
    if has_since:
        clauses.append(f" AND {column} > :page_since_id")
    if has_min:
        clauses.append(f" AND {column} > :page_min_id ORDER BY {column} ASC LIMIT :page_limit")
    else:
        clauses.append(f" ORDER BY {column} DESC LIMIT :page_limit")
    return "".join(clauses)


def parse_id(raw: str | None, *, name: str) -> int | None:
    """Parse a decimal id; reject anything that is not a non-negative 64-bit integer."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_ID_VALUE:
        raise ValidationFailed(f"{name} must be a numeric id")
    return int(raw)


def parse_page(query: Mapping[str, str], *, default_limit: int, max_limit: int) -> PageRequest:
    raw_limit = query.get("limit")
    limit = default_limit
    if raw_limit not in (None, ""):
        if not (raw_limit.isascii() and raw_limit.isdigit()) or len(raw_limit) > 6:
            raise ValidationFailed("limit must be a positive integer")
        # Like Mastodon, a limit above the maximum is clamped rather than rejected.
        limit = min(int(raw_limit), max_limit)
        if limit < 1:
            raise ValidationFailed("limit must be a positive integer")
    return PageRequest(
        max_id=parse_id(query.get("max_id"), name="max_id"),
        since_id=parse_id(query.get("since_id"), name="since_id"),
        min_id=parse_id(query.get("min_id"), name="min_id"),
        limit=limit,
    )


def path_id(request: web.Request, name: str = "id") -> int:
    """Parse an id from the URL path; the route pattern already matched digits only."""
    value = parse_id(request.match_info[name], name=name)
    assert value is not None  # the route pattern only matches non-empty segments
    return value


def query_ids(request: web.Request, name: str = "ids") -> list[int]:
    """Parse a comma-separated list of ids from the query string, at most ``MAX_BATCH_IDS``."""
    raw = request.query.get(name, "")
    values = [parse_id(part, name=name) for part in raw.split(",") if part]
    if len(values) > MAX_BATCH_IDS:
        raise ValidationFailed(f"at most {MAX_BATCH_IDS} ids per request")
    return [value for value in values if value is not None]
