"""Batch look-ups that turn internal records into Mastodon entities.

A page of statuses costs one account call and one stats call however many
statuses and authors it has, and both go out concurrently. A caller that already
has the authors' stats (the post service returns them with statuses on request)
saves the stats call.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from twitter_gateway.account_events import EventCoverage
from twitter_gateway.render import account_entity, status_account_ids
from twitter_gateway.render_json import Author, Template, author_of, status_json, status_list_json
from twitter_shared.errors import BadRequest, NotFound
from twitter_shared.runtime import SETTINGS, client
from twitter_shared.settings import ServiceName

MAX_BATCH = 200
# A host name has at most 253 characters (RFC 1035), and an origin adds a scheme and a port.
MAX_HOST_LENGTH = 253
MAX_ORIGIN_LENGTH = len("https://") + MAX_HOST_LENGTH + len(":65535")
INVALID_HOST = "Invalid Host header: send a plain host name or address of at most 253 characters, with an optional port"
# Probes call these with any Host, and they render no links.
UNRENDERED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The request key under which ``host_check_middleware`` leaves the base URL for ``base_url``.
BASE_URL = web.RequestKey("base_url", str)
MAX_KEPT_ORIGINS = 1_000
_ORIGINS: dict[str, str] = {}
_ORIGIN_OF_HOST: dict[tuple[str, str], str] = {}
PLAIN_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
# Past this many records the cache starts empty again, which bounds its memory.
ACCOUNT_CACHE_MAX_ENTRIES = 10_000


class AccountRecordCache:
    """Account service records by id, each kept to the end of the ``seconds`` window it was read in.

    The statuses a gateway renders embed their authors, mostly the same few hundred
    accounts. Reading them again for every page was a third of a home read's calls.
    The views that change an account (profile edit, follow, unfollow) ``forget`` it,
    so this process shows the change at once. While the account events are followed
    (see ``account_events``), which forget changed records within moments, a record
    stays up to ``coverage.seconds``.
    """

    def __init__(self, seconds: float, *, coverage: EventCoverage | None = None) -> None:
        self.seconds = seconds
        self.coverage = coverage or EventCoverage(seconds=0)
        # Records by id, each with the end of its window and the time it was stored (monotonic).
        self._records: dict[str, tuple[float, float, dict[str, Any]]] = {}
        # The number of forget calls so far. Records read before a forget may predate the change, so they are not stored.
        self.forgets = 0

    def fresh(self, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        found: dict[str, dict[str, Any]] = {}
        for account_id in account_ids:
            entry = self._records.get(account_id)
            if entry is not None and (entry[0] > now or self.coverage.keeps(entry[1], now)):
                found[account_id] = entry[2]
        return found

    def store(self, accounts: list[dict[str, Any]], *, forgets_before: int) -> None:
        """Keep records read when ``forgets`` was ``forgets_before``, unless a forget came since."""
        if self.seconds <= 0 or self.forgets != forgets_before:
            return
        if len(self._records) + len(accounts) > ACCOUNT_CACHE_MAX_ENTRIES:
            self._records.clear()
        # Records read within one window of ``seconds`` expire together at its end. Each expiring on
        # its own left almost every page with one expired author, and so with one account call.
        now = time.monotonic()
        expires_at = (now // self.seconds + 1) * self.seconds
        for account in accounts:
            self._records[account["id"]] = (expires_at, now, account)

    def forget(self, *account_ids: int | str) -> None:
        self.forgets += 1
        for account_id in account_ids:
            self._records.pop(str(account_id), None)

    def clear(self) -> None:
        self.forgets += 1
        self._records.clear()


ACCOUNT_CACHE = web.AppKey("account_cache", AccountRecordCache)


def forget_accounts(request: web.Request, *account_ids: int | str) -> None:
    """Drop cached records of accounts this request changed, so this process shows the change at once."""
    cache = request.app.get(ACCOUNT_CACHE)
    if cache is not None:
        cache.forget(*account_ids)


def base_url(request: web.Request) -> str:
    """Return the public base URL: the configured one, else the origin the request was sent to.

    The origin is in every rendering the gateway keeps (see ``render_json``), so it must be a
    plain host name or address with an optional port, of at most ``MAX_ORIGIN_LENGTH`` characters.
    """
    found = request.get(BASE_URL)
    if found is not None:
        return found
    configured = request.app[SETTINGS].public_url
    if configured:
        return configured
    # The origin follows from the scheme and the Host header alone; yarl took a fiftieth of a home read to build it.
    sent_to = (request.scheme, request.host)
    found = _ORIGIN_OF_HOST.get(sent_to)
    if found is None:
        found = _checked_origin(request)
        if len(_ORIGIN_OF_HOST) >= MAX_KEPT_ORIGINS:
            _ORIGIN_OF_HOST.clear()
        _ORIGIN_OF_HOST[sent_to] = found
    return found


def _checked_origin(request: web.Request) -> str:
    try:
        origin = str(request.url.origin())
        host = request.url.raw_host or ""
    except (ValueError, UnicodeError) as error:
        raise BadRequest(INVALID_HOST) from error
    if len(host) > MAX_HOST_LENGTH or len(origin) > MAX_ORIGIN_LENGTH or not PLAIN_ORIGIN.match(origin):
        raise BadRequest(INVALID_HOST)
    # One string per origin, shared by the keys of every kept rendering instead of one per request.
    if len(_ORIGINS) >= MAX_KEPT_ORIGINS:
        _ORIGINS.clear()
    return _ORIGINS.setdefault(origin, origin)


@web.middleware
async def host_check_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Reject a request with an invalid Host header before its handler runs.

    Responses are rendered after the change a request makes is saved, so a Host header found
    invalid only then gave a 400 for a status that was posted all the same.
    """
    if request.path not in UNRENDERED_PATHS:
        request[BASE_URL] = base_url(request)
    return await handler(request)


async def account_entities(
    request: web.Request,
    account_ids: list[str] | set[str],
    *,
    with_source_for: str | None = None,
    known_stats: dict[str, Any] | None = None,
    known_records: list[dict[str, Any]] | None = None,
    use_cache: bool = False,
) -> dict[str, dict[str, Any]]:
    """Fetch and render accounts by id; ids that no longer exist are absent from the result.

    ``known_stats`` maps account ids to post stats already read, and ``known_records`` holds
    account records already read; only the rest is fetched, records and stats concurrently.
    ``use_cache`` is passed on to ``account_records``.
    """
    records, stats = await _records_and_stats(
        request, account_ids, known_stats=known_stats, known_records=known_records, use_cache=use_cache
    )
    root = base_url(request)
    return {
        account["id"]: account_entity(
            account, stats.get(account["id"]), base_url=root, with_source=account["id"] == with_source_for
        )
        for account in records
    }


async def _records_and_stats(
    request: web.Request,
    account_ids: list[str] | set[str],
    *,
    known_stats: dict[str, Any] | None,
    known_records: list[dict[str, Any]] | None,
    use_cache: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return the records of the accounts that exist and the post stats of all (see ``account_entities``)."""
    ids = sorted(set(account_ids))
    if not ids:
        return [], {}
    stats: dict[str, Any] = dict(known_stats or {})
    known = [record for record in known_records or () if record["id"] in ids]
    known_ids = {record["id"] for record in known}
    posts_client = client(request.app, ServiceName.POST)
    missing_stats = [account_id for account_id in ids if account_id not in stats]
    fetched, *stats_chunks = await asyncio.gather(
        account_records(request, [account_id for account_id in ids if account_id not in known_ids], use_cache=use_cache),
        *(posts_client.get("/internal/accounts/stats", params={"ids": ",".join(batch)}) for batch in _batches(missing_stats)),
    )
    for chunk in stats_chunks:
        stats.update(chunk)
    return [*fetched, *known], stats


async def account_records(request: web.Request, account_ids: list[str], *, use_cache: bool = True) -> list[dict[str, Any]]:
    """Return the account service's records of these accounts; ids that no longer exist are absent.

    With ``use_cache``, records still in the ``AccountRecordCache`` are not read again; the
    records read are stored in it either way.
    """
    cache = request.app.get(ACCOUNT_CACHE)
    cached = cache.fresh(account_ids) if use_cache and cache is not None else {}
    missing = [account_id for account_id in account_ids if account_id not in cached]
    forgets_before = cache.forgets if cache is not None else 0
    accounts_client = client(request.app, ServiceName.ACCOUNT)
    chunks = await asyncio.gather(
        *(accounts_client.get("/internal/accounts", params={"ids": ",".join(batch)}) for batch in _batches(missing))
    )
    fetched = [account for chunk in chunks for account in chunk]
    if cache is not None:
        cache.store(fetched, forgets_before=forgets_before)
    return [*cached.values(), *fetched]


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + MAX_BATCH] for start in range(0, len(ids), MAX_BATCH)]


async def account_entity_for(request: web.Request, account_id: int | str, *, with_source: bool = False) -> dict[str, Any]:
    key = str(account_id)
    found = await account_entities(request, [key], with_source_for=key if with_source else None)
    if key not in found:
        raise NotFound()
    return found[key]


async def status_entities(
    request: web.Request,
    statuses: list[dict[str, Any]],
    *,
    with_text: bool = False,
    author_stats: dict[str, Any] | None = None,
    author_records: list[dict[str, Any]] | None = None,
) -> list[orjson.Fragment]:
    """Render statuses in order as JSON, dropping any whose author has been deleted meanwhile.

    Authors may come from the cache. Each status is JSON ready for a response (``status_json``):
    the views only send statuses, and a kept rendering costs far less than a new one.
    """
    authors, root = await _authors(request, statuses, author_stats=author_stats, author_records=author_records)
    rendered = (status_json(status, authors, base_url=root, with_text=with_text) for status in statuses)
    return [entity for entity in rendered if entity is not None]


async def status_list(
    request: web.Request,
    statuses: list[dict[str, Any]],
    *,
    author_stats: dict[str, Any] | None = None,
    author_records: list[dict[str, Any]] | None = None,
    pinned: Mapping[str, Template] | None = None,
) -> orjson.Fragment:
    """Render statuses like ``status_entities``, as one JSON array: the form a page of statuses is sent in.

    ``pinned`` contains the templates of the compact statuses among them (see ``known_templates``).
    """
    authors, root = await _authors(request, statuses, author_stats=author_stats, author_records=author_records)
    return status_list_json(statuses, authors, base_url=root, pinned=pinned or {})


async def _authors(
    request: web.Request,
    statuses: list[dict[str, Any]],
    *,
    author_stats: dict[str, Any] | None,
    author_records: list[dict[str, Any]] | None,
) -> tuple[dict[str, Author], str]:
    """Return the statuses' authors that still exist, by id, and the base URL they were rendered with."""
    records, stats = await _records_and_stats(
        request, status_account_ids(statuses), known_stats=author_stats, known_records=author_records, use_cache=True
    )
    root = base_url(request)
    return {record["id"]: author_of(record, stats.get(record["id"]), base_url=root) for record in records}, root


async def status_entity_for(
    request: web.Request,
    status: dict[str, Any],
    *,
    with_text: bool = False,
    author_stats: dict[str, Any] | None = None,
    author_records: list[dict[str, Any]] | None = None,
) -> orjson.Fragment:
    rendered = await status_entities(
        request, [status], with_text=with_text, author_stats=author_stats, author_records=author_records
    )
    if not rendered:
        raise NotFound()
    return rendered[0]
