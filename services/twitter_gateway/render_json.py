"""Statuses and accounts rendered as JSON once and kept between pages.

The same statuses and authors fill page after page, and building and serializing
their entities was a fifth of a gateway's work per home read. Each rendering is
kept by everything it is made from, so a kept one is never out of date: a status
by its counts, the reader's flags, its mentions, its text, its author's username
and its reblog; an account by its record and post stats. The other fields of a
status never change once it is created.

A status is kept without its author, as the JSON before and after the author's
entity, because the author's post stats change with each of their posts. A page
joins the parts with the author's kept JSON.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from twitter_gateway.render import account_entity, status_fields

# The dataset's home pages average 0.74 KB of JSON per status without its author and as
# much per author, so these memos hold about 12 and 3 MB at most.
MAX_KEPT_STATUS_JSON = 16_000
MAX_KEPT_ACCOUNT_JSON = 4_000
# Stands for the author in a kept status. orjson escapes NUL inside strings, so this byte
# appears in its output only where this fragment is.
_AUTHOR_SLOT = orjson.Fragment(b"\x00")


class Author(NamedTuple):
    """An account as ``status_json`` embeds it: its username and its entity's JSON (see ``account_json``)."""

    username: str
    json: bytes


class _Rendered(NamedTuple):
    """A status's JSON and what it was made from, the key of a reblog's wrapper."""

    json: bytes
    made_from: tuple[Any, ...]


_ACCOUNT_JSON: dict[tuple[Any, ...], bytes] = {}
# Keyed like ``status_json``'s memo; each value is the JSON before and after the author's.
_STATUS_JSON: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}


def account_json(account: dict[str, Any], stats: dict[str, Any] | None, *, base_url: str) -> bytes:
    """Return ``account_entity(account, stats)`` as JSON."""
    stats = stats or {}
    key = (base_url, stats.get("statuses_count", 0), stats.get("last_status_at"), *account.items())
    found = _ACCOUNT_JSON.get(key)
    if found is None:
        if len(_ACCOUNT_JSON) >= MAX_KEPT_ACCOUNT_JSON:
            _ACCOUNT_JSON.clear()
        # orjson returns its output in a larger buffer: 10,000 outputs of 2 KB took 79 MB of RSS
        # (orjson 3.13), and an exact copy of each 22 MB.
        found = _ACCOUNT_JSON[key] = bytes(memoryview(orjson.dumps(account_entity(account, stats, base_url=base_url))))
    return found


def status_json(
    status: dict[str, Any], authors: dict[str, Author], *, base_url: str, with_text: bool = False
) -> orjson.Fragment | None:
    """Return ``status_entity``'s rendering as JSON, or None when its author or its reblog's author is gone."""
    rendered = _render(status, authors, base_url=base_url, with_text=with_text)
    return orjson.Fragment(rendered.json) if rendered is not None else None


def _render(status: dict[str, Any], authors: dict[str, Author], *, base_url: str, with_text: bool) -> _Rendered | None:
    author = authors.get(status["account_id"])
    if author is None:
        return None
    reblog = None
    if status.get("reblog"):
        reblog = _render(status["reblog"], authors, base_url=base_url, with_text=False)
        if reblog is None:
            return None
    mentions = status.get("mentions")
    key = (
        base_url,
        with_text,
        status["id"],
        status.get("text", ""),
        status.get("replies_count", 0),
        status.get("reblogs_count", 0),
        status.get("favourites_count", 0),
        status.get("favourited"),
        status.get("reblogged"),
        tuple([mention["id"] for mention in mentions]) if mentions else (),
        author.username,
        reblog.made_from if reblog is not None else None,
    )
    parts = _STATUS_JSON.get(key)
    if parts is None:
        if len(_STATUS_JSON) >= MAX_KEPT_STATUS_JSON:
            _STATUS_JSON.clear()
        reblog_json = orjson.Fragment(reblog.json) if reblog is not None else None
        entity = status_fields(status, author.username, _AUTHOR_SLOT, reblog_json, base_url=base_url, with_text=with_text)
        # Splitting copies each part exactly, which also frees orjson's larger buffer.
        before, after = orjson.dumps(entity).split(b"\x00")
        parts = _STATUS_JSON[key] = (before, after)
    # The author's JSON is part of what a reblog's wrapper embeds, so it is part of the wrapper's key.
    return _Rendered(b"".join((parts[0], author.json, parts[1])), (key, author.json))
