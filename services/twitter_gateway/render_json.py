"""Statuses and accounts rendered as JSON once and kept between pages.

The same statuses and authors fill page after page, and building and serializing
their entities was a fifth of a gateway's work per home read. Each rendering is
kept by everything it is made from, so a kept one is never out of date. A status
is kept by its counts, the reader's flags, its mentions, its author's username
and its reblog, and an account by its record and post stats. The other fields of
a status, its text among them, never change once it is created.

A status is kept without its author, as the JSON before and after the author's
entity, because the author's post stats change with each of their posts. A page
joins the parts with the author's kept JSON.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import orjson

from twitter_gateway.render import account_entity, status_fields

# The dataset's home pages average 0.74 KB of JSON per status without its author and as much
# per author. The memos are bounded by entries and by the bytes of JSON they keep, because
# the base URL is in each rendering: with a long Host header a rendering is twice as large.
# When the status memo is full, its oldest eighth is dropped. Emptying it all made every read
# a miss for a while once more statuses were read than it keeps.
MAX_KEPT_STATUS_JSON = 24_000
MAX_KEPT_STATUS_JSON_BYTES = 18_000_000
MAX_KEPT_ACCOUNT_JSON = 4_000
MAX_KEPT_ACCOUNT_JSON_BYTES = 3_000_000
# Stands for the author in a kept status. orjson escapes NUL inside strings, so this byte
# appears in its output only where this fragment is.
_AUTHOR_SLOT = orjson.Fragment(b"\x00")


class Author(NamedTuple):
    """An account as ``status_json`` embeds it: its username and its entity's JSON (see ``account_json``)."""

    username: str
    json: bytes


class _Rendered(NamedTuple):
    """A status's JSON in parts (before its author's, its author's, after) and what it was made from."""

    parts: tuple[bytes, bytes, bytes]
    made_from: tuple[Any, ...]


_ACCOUNT_JSON: dict[tuple[Any, ...], bytes] = {}
# The bytes of JSON each memo keeps, so their bounds cost nothing to check.
_kept_bytes = {"status": 0, "account": 0}
# Authors by the id of their record, each with that record and the stats and base URL made from.
_AUTHORS: dict[int, tuple[dict[str, Any], tuple[Any, ...], Author]] = {}
# Keyed like ``status_json``'s memo; each value is the JSON before and after the author's.
_STATUS_JSON: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}


def author_of(record: dict[str, Any], stats: dict[str, Any] | None, *, base_url: str) -> Author:
    """Return the ``Author`` of an account record with its post stats.

    The gateway's account cache hands out the same record dict until the record changes, and
    nothing changes a record in place. So an author kept for this very dict, with the same
    stats, is found without building ``account_json``'s key, which took a tenth of a home read
    once pages had 20 authors.
    """
    stats = stats or {}
    made_from = (base_url, stats.get("statuses_count", 0), stats.get("last_status_at"))
    entry = _AUTHORS.get(id(record))
    if entry is not None and entry[0] is record and entry[1] == made_from:
        return entry[2]
    if len(_AUTHORS) >= MAX_KEPT_ACCOUNT_JSON:
        _AUTHORS.clear()
    author = Author(record["username"], account_json(record, stats, base_url=base_url))
    # The entry keeps a reference to the record, so no other dict can get its id while it is kept.
    _AUTHORS[id(record)] = (record, made_from, author)
    return author


def account_json(account: dict[str, Any], stats: dict[str, Any] | None, *, base_url: str) -> bytes:
    """Return ``account_entity(account, stats)`` as JSON."""
    stats = stats or {}
    key = (base_url, stats.get("statuses_count", 0), stats.get("last_status_at"), *account.items())
    found = _ACCOUNT_JSON.get(key)
    if found is None:
        # orjson returns its output in a larger buffer: 10,000 outputs of 2 KB took 79 MB of RSS
        # (orjson 3.13), and an exact copy of each 22 MB.
        found = bytes(memoryview(orjson.dumps(account_entity(account, stats, base_url=base_url))))
        if len(_ACCOUNT_JSON) >= MAX_KEPT_ACCOUNT_JSON or _kept_bytes["account"] + len(found) > MAX_KEPT_ACCOUNT_JSON_BYTES:
            _ACCOUNT_JSON.clear()
            _kept_bytes["account"] = 0
        _ACCOUNT_JSON[key] = found
        _kept_bytes["account"] += len(found)
    return found


def status_json(
    status: dict[str, Any], authors: dict[str, Author], *, base_url: str, with_text: bool = False
) -> orjson.Fragment | None:
    """Return ``status_entity``'s rendering as JSON, or None when its author or its reblog's author is gone."""
    rendered = _render(status, authors, base_url=base_url, with_text=with_text)
    return orjson.Fragment(b"".join(rendered.parts)) if rendered is not None else None


def status_list_json(statuses: list[dict[str, Any]], authors: dict[str, Author], *, base_url: str) -> orjson.Fragment:
    """Return the JSON array of ``status_json`` of each status, leaving out those whose author is gone.

    The array is joined from the kept parts at once: a page of 20 statuses then costs one
    buffer instead of one per status, and orjson copies one fragment instead of 20.
    """
    pieces = [b"["]
    for status in statuses:
        rendered = _render(status, authors, base_url=base_url, with_text=False)
        if rendered is None:
            continue
        if len(pieces) > 1:
            pieces.append(b",")
        pieces.extend(rendered.parts)
    pieces.append(b"]")
    return orjson.Fragment(b"".join(pieces))


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
        reblog_json = orjson.Fragment(b"".join(reblog.parts)) if reblog is not None else None
        entity = status_fields(status, author.username, _AUTHOR_SLOT, reblog_json, base_url=base_url, with_text=with_text)
        # Splitting copies each part exactly, which also frees orjson's larger buffer.
        before, after = orjson.dumps(entity).split(b"\x00")
        size = len(before) + len(after)
        if len(_STATUS_JSON) >= MAX_KEPT_STATUS_JSON or _kept_bytes["status"] + size > MAX_KEPT_STATUS_JSON_BYTES:
            _drop_oldest_statuses(len(_STATUS_JSON) // 8 + 1)
        parts = _STATUS_JSON[key] = (before, after)
        _kept_bytes["status"] += size
    # The author's JSON is part of what a reblog's wrapper embeds, so it is part of the wrapper's key.
    return _Rendered((parts[0], author.json, parts[1]), (key, author.json))


def _drop_oldest_statuses(count: int) -> None:
    # Dicts keep insertion order, so the first keys are the oldest entries.
    for key in list(itertools.islice(_STATUS_JSON, count)):
        before, after = _STATUS_JSON.pop(key)
        _kept_bytes["status"] -= len(before) + len(after)
