"""Statuses and accounts rendered as JSON once and kept between pages.

The same statuses and authors fill page after page, and building and serializing
their entities was a fifth of a gateway's work per home read. Each rendering is
kept by everything it is made from, so a kept one is never out of date.

A status is kept as a template: its JSON in pieces around slots that each
rendering fills. One slot is for its counts and the reader's flags, which change.
Another is for its author's entity, because the author's post stats change with
each of their posts, and a reblog has a third for its original. A template is kept by the
base URL and the status id, and is used while the author's username, the mentions
and the original still match. The other fields of a status, its text among them,
never change once it is created. So a home read can request the statuses it has
templates for from the post service without their fixed fields (``known_templates``).

An account is kept by its record and post stats.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
import structlog

from twitter_gateway.render import account_entity, status_fields
from twitter_shared.errors import UpstreamError

log = structlog.get_logger()

# The dataset's home pages average 0.74 KB of JSON per status without its author and as much
# per author. The memos are bounded by entries and by the bytes of JSON they keep, because
# the base URL is in each rendering: with a long Host header a rendering is twice as large.
# When the status memo is full, its oldest eighth is dropped. Emptying it all made every read
# a miss for a while once more statuses were read than it keeps.
MAX_KEPT_STATUS_JSON = 24_000
MAX_KEPT_STATUS_JSON_BYTES = 18_000_000
MAX_KEPT_ACCOUNT_JSON = 4_000
MAX_KEPT_ACCOUNT_JSON_BYTES = 3_000_000
# The slots of a template, in the order a status entity has them. orjson escapes control
# characters inside strings, so these bytes appear in its output only where these fragments are.
_COUNTS_SLOT = orjson.Fragment(b"\x01")
_REBLOG_SLOT = orjson.Fragment(b"\x02")
_AUTHOR_SLOT = orjson.Fragment(b"\x00")
_SLOTS = re.compile(b"[\x00-\x02]")
# The JSON that fills the counts slot, which is where ``replies_count`` was.
_COUNTS = b'%d,"reblogs_count":%d,"favourites_count":%d,"favourited":%s,"reblogged":%s'
_IN_COUNTS_SLOT = ("reblogs_count", "favourites_count", "favourited", "reblogged")


class Author(NamedTuple):
    """An account as ``status_json`` embeds it: its username and its entity's JSON (see ``account_json``)."""

    username: str
    json: bytes


class Template(NamedTuple):
    """A status's JSON in pieces around its slots, and the username, mentions and original it was made with."""

    pieces: tuple[bytes, ...]
    username: str
    mention_ids: tuple[str, ...]
    reblog_of: str | None


_ACCOUNT_JSON: dict[tuple[Any, ...], bytes] = {}
# The bytes of JSON each memo keeps, so their bounds cost nothing to check.
_kept_bytes = {"status": 0, "account": 0}
# Authors by the id of their record, each with that record and the stats and base URL made from.
_AUTHORS: dict[int, tuple[dict[str, Any], tuple[Any, ...], Author]] = {}
# Templates by base URL, whether the rendering has the text, and status id.
_TEMPLATES: dict[tuple[str, bool, str], Template] = {}
_NOTHING_PINNED: Mapping[str, Template] = {}


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
    pieces = _pieces(status, authors, base_url=base_url, with_text=with_text, pinned=_NOTHING_PINNED)
    return orjson.Fragment(b"".join(pieces)) if pieces is not None else None


def status_list_json(
    statuses: list[dict[str, Any]],
    authors: dict[str, Author],
    *,
    base_url: str,
    pinned: Mapping[str, Template] = _NOTHING_PINNED,
) -> orjson.Fragment:
    """Return the JSON array of ``status_json`` of each status, leaving out those whose author is gone.

    The array is joined from the kept pieces at once: a page of 20 statuses then costs one
    buffer instead of one per status, and orjson copies one fragment instead of 20.
    ``pinned`` contains the templates ``known_templates`` returned for the compact statuses among these.
    """
    joined = [b"["]
    for status in statuses:
        pieces = _pieces(status, authors, base_url=base_url, with_text=False, pinned=pinned)
        if pieces is None:
            continue
        if len(joined) > 1:
            joined.append(b",")
        joined.extend(pieces)
    joined.append(b"]")
    return orjson.Fragment(b"".join(joined))


def known_templates(base_url: str, status_ids: list[str]) -> dict[str, Template]:
    """Return the kept templates of these statuses and of their reblogged originals that a compact status can fill.

    The caller requests these statuses from the post service as compact ones (without their fixed
    fields) and renders them with these very templates, which may leave the memo meanwhile.
    Only templates without mentions qualify: a status never gains mentions, but loses one when
    the mentioned account is deleted, and its text is needed to render it again then.
    """
    pinned: dict[str, Template] = {}
    for status_id in status_ids:
        template = _TEMPLATES.get((base_url, False, status_id))
        if template is None or template.mention_ids:
            continue
        pinned[status_id] = template
        original = _TEMPLATES.get((base_url, False, template.reblog_of)) if template.reblog_of else None
        if original is not None and not original.mention_ids:
            pinned[template.reblog_of] = original
    return pinned


def _pieces(
    status: dict[str, Any], authors: dict[str, Author], *, base_url: str, with_text: bool, pinned: Mapping[str, Template]
) -> list[bytes] | None:
    """Return the pieces of a status's JSON with its slots filled, or None when its author or its reblog's is gone."""
    author = authors.get(status["account_id"])
    if author is None:
        return None
    reblog = None
    if status.get("reblog"):
        reblog = _pieces(status["reblog"], authors, base_url=base_url, with_text=False, pinned=pinned)
        if reblog is None:
            return None
    template = _template(status, author.username, base_url=base_url, with_text=with_text, pinned=pinned)
    counts = _COUNTS % (
        status.get("replies_count", 0),
        status.get("reblogs_count", 0),
        status.get("favourites_count", 0),
        b"true" if status.get("favourited") else b"false",
        b"true" if status.get("reblogged") else b"false",
    )
    if reblog is None:
        before, middle, after = template.pieces
        return [before, counts, middle, author.json, after]
    before, middle, between, after = template.pieces
    return [before, counts, middle, *reblog, between, author.json, after]


def _template(
    status: dict[str, Any], username: str, *, base_url: str, with_text: bool, pinned: Mapping[str, Template]
) -> Template:
    mentions = status.get("mentions")
    mention_ids = tuple([mention["id"] for mention in mentions]) if mentions else ()
    reblog_of = status["reblog"]["id"] if status.get("reblog") else None
    key = (base_url, with_text, status["id"])
    found = pinned.get(status["id"]) if not with_text else None
    if found is None:
        found = _TEMPLATES.get(key)
    if found is not None and (found.username, found.mention_ids, found.reblog_of) == (username, mention_ids, reblog_of):
        return found
    if "created_at" not in status:
        # Compact statuses are requested only with a pinned template that fits, so this is a fault.
        log.error("render.unknown_compact_status", status_id=status["id"])
        raise UpstreamError("The post service returned a status without its fields")
    template = _make_template(status, username, mention_ids, reblog_of, base_url=base_url, with_text=with_text)
    size = sum(map(len, template.pieces))
    if len(_TEMPLATES) >= MAX_KEPT_STATUS_JSON or _kept_bytes["status"] + size > MAX_KEPT_STATUS_JSON_BYTES:
        _drop_oldest_statuses(len(_TEMPLATES) // 8 + 1)
    previous = _TEMPLATES.pop(key, None)
    if previous is not None:
        _kept_bytes["status"] -= sum(map(len, previous.pieces))
    _TEMPLATES[key] = template
    _kept_bytes["status"] += size
    return template


def _make_template(
    status: dict[str, Any], username: str, mention_ids: tuple[str, ...], reblog_of: str | None, *, base_url: str, with_text: bool
) -> Template:
    reblog_slot = _REBLOG_SLOT if reblog_of is not None else None
    entity = status_fields(status, username, _AUTHOR_SLOT, reblog_slot, base_url=base_url, with_text=with_text)
    # The counts and flags go into one slot where the first of them was.
    entity["replies_count"] = _COUNTS_SLOT
    for name in _IN_COUNTS_SLOT:
        del entity[name]
    # Splitting copies each piece exactly, which also frees orjson's larger buffer.
    pieces = tuple(_SLOTS.split(orjson.dumps(entity)))
    return Template(pieces, username, mention_ids, reblog_of)


def _drop_oldest_statuses(count: int) -> None:
    # Dicts keep insertion order, so the first keys are the oldest entries.
    for key in list(itertools.islice(_TEMPLATES, count)):
        _kept_bytes["status"] -= sum(map(len, _TEMPLATES.pop(key).pieces))
