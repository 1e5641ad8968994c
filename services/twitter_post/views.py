"""Internal HTTP handlers of the post service; the gateway and the timeline service call them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twitter_post import store
from twitter_post.text import check_text, mentioned_names
from twitter_post.tables import consumer_cursors
from twitter_shared.client import InternalClient
from twitter_shared.consumer import read_cursor
from twitter_shared.database import read_only
from twitter_shared.errors import ValidationFailed
from twitter_shared.outbox import BEYOND_ANY_POSITION
from twitter_shared.pagination import MAX_BATCH_IDS, parse_id, parse_page, path_id, query_ids
from twitter_shared.runtime import ENGINE, IDS, OUTBOX_READER, SETTINGS, client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response, read_json_object

DEFAULT_PAGE = 20
MAX_PAGE = 40
DEFAULT_REFS = 800
MAX_REFS = 5000
VISIBILITIES = ("public", "unlisted", "private", "direct")
MAX_IDEMPOTENCY_KEY = 200
MAX_LANGUAGE = 16
# The maximum number of look-ups in one batch call (a gateway sends at most 8).
MAX_LOOKUPS = 64
PAGE_PARAMETERS = ("limit", "max_id", "since_id", "min_id")
TRUE_VALUES = {"1", "true", "True", "on", "yes"}


def query_flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "") in TRUE_VALUES


def query_limit(request: web.Request, *, default: int, maximum: int) -> int:
    raw = request.query.get("limit", "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed("limit must be a positive integer")
    return min(int(raw), maximum)


def viewer(request: web.Request) -> int | None:
    return parse_id(request.query.get("viewer_id"), name="viewer_id")


def body_id(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a numeric id")
    return parse_id(value, name=name)


def required_account(body: dict[str, Any]) -> int:
    account_id = body_id(body, "account_id")
    if account_id is None:
        raise ValidationFailed("account_id is required")
    return account_id


def _optional_text(body: dict[str, Any], name: str, *, max_length: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
        limit = f" of at most {max_length} characters" if max_length is not None else ""
        raise ValidationFailed(f"{name} must be a text{limit}")
    return value


def _flag(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value in TRUE_VALUES)


def _strict_flag(body: dict[str, Any], name: str) -> bool:
    """Return the boolean ``body[name]``, false when absent; anything but true, false or null is invalid."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false")
    return value


async def _new_status(request: web.Request, body: dict[str, Any]) -> store.NewStatus:
    """Validate the request fields, then resolve mentions through the account service."""
    account_id = required_account(body)
    spoiler_text = _optional_text(body, "spoiler_text") or ""
    text = check_text(body.get("status"), spoiler_text=spoiler_text)
    visibility = body.get("visibility") or "public"
    if visibility not in VISIBILITIES:
        raise ValidationFailed(f"Validation failed: visibility must be one of {', '.join(VISIBILITIES)}")
    key = _optional_text(body, "idempotency_key", max_length=MAX_IDEMPOTENCY_KEY)

    names = mentioned_names(text, local_domain=request.app[SETTINGS].instance_domain)
    found: dict[str, str] = {}
    if names:
        accounts: InternalClient = client(request.app, ServiceName.ACCOUNT)
        found = await accounts.get("/internal/accounts/ids-by-username", params={"usernames": ",".join(names)})
    mentioned = {int(found[name.lower()]): name for name in names if name.lower() in found}

    return store.NewStatus(
        account_id=account_id,
        text=text,
        in_reply_to_id=body_id(body, "in_reply_to_id"),
        visibility=visibility,
        spoiler_text=spoiler_text,
        sensitive=_flag(body.get("sensitive")),
        language=_optional_text(body, "language", max_length=MAX_LANGUAGE) or None,
        mentions=mentioned,
        idempotency_key=key or None,
    )


async def create_status(request: web.Request) -> web.Response:
    new = await _new_status(request, await read_json_object(request))
    status, created, author_stats = await store.create_status(request.app[ENGINE], request.app[IDS], new)
    if created:
        request.app[OUTBOX_READER].notify()
    return json_response({"status": status, "created": created, "author_stats": author_stats})


async def get_statuses(request: web.Request) -> web.Response:
    """Return statuses by id; with ``author_stats=true``, an object that also has their authors' stats."""
    if query_flag(request, "author_stats"):
        found = await store.get_statuses_with_author_stats(request.app[ENGINE], query_ids(request), viewer_id=viewer(request))
        return json_response(found)
    return json_response(await store.get_statuses(request.app[ENGINE], query_ids(request), viewer_id=viewer(request)))


async def look_up_statuses(request: web.Request) -> web.Response:
    """Return the results of a batch of look-ups, ``{"lookups": [{"ids": [...], "viewer_id": ...}]}``, in order.

    Each result is what ``GET /internal/statuses?author_stats=true`` returns for its ids and viewer.
    A look-up may list ``known`` ids, statuses whose fixed fields the caller has: those come compact.
    """
    lookups, known = _lookups(_items(await read_json_object(request), "lookups"))
    return json_response({"results": await store.look_up_statuses(request.app[ENGINE], lookups, known=known)})


async def read_pages(request: web.Request) -> web.Response:
    """Return the results of look-ups and account statuses pages, ``{"lookups": [...], "account_pages": [...]}``.

    Each list is optional and is checked as ``/internal/statuses/lookups`` and
    ``/internal/accounts/statuses/lookups`` check theirs. Both are read together, so a
    caller with both kinds of pages to read makes one call. The response has the results of
    each list, in order, under the same names.
    """
    body = await read_json_object(request)
    lookup_items = _items(body, "lookups", optional=True)
    page_items = _items(body, "account_pages", optional=True, noun="pages")
    if not lookup_items and not page_items:
        raise ValidationFailed("lookups and account_pages must not both be empty")
    lookups, known = _lookups(lookup_items)
    lookup_results, page_results = await store.read_pages(
        request.app[ENGINE], lookups, known=known, pages=[_account_page(item) for item in page_items]
    )
    return json_response({"lookups": lookup_results, "account_pages": page_results})


def _items(body: dict[str, Any], name: str, *, optional: bool = False, noun: str = "look-ups") -> list[Any]:
    """Return ``body[name]``, a list of 1 to ``MAX_LOOKUPS`` items (0 to that many when ``optional``); the caller checks each."""
    items = body.get(name, [] if optional else None)
    if not isinstance(items, list) or (not items and not optional) or len(items) > MAX_LOOKUPS:
        raise ValidationFailed(f"{name} must be a list of {0 if optional else 1} to {MAX_LOOKUPS} {noun}")
    return items


def _lookups(items: list[Any]) -> tuple[list[tuple[list[int], int | None]], list[frozenset[int]]]:
    """Parse look-up items into ``(status ids, viewer id)`` pairs and, for each, its ``known`` ids."""
    return [_lookup(item) for item in items], [frozenset(_id_list(item, "known")) for item in items]


def _lookup(item: Any) -> tuple[list[int], int | None]:
    if not isinstance(item, dict) or not isinstance(item.get("ids"), list):
        raise ValidationFailed("each look-up must be an object with a list of ids")
    return _id_list(item, "ids"), body_id(item, "viewer_id")


def _id_list(item: dict[str, Any], name: str) -> list[int]:
    """Return the look-up's list of ids under ``name`` (an absent list is empty); empty ids are dropped."""
    ids = item.get(name, [])
    if not isinstance(ids, list) or len(ids) > MAX_BATCH_IDS or not all(isinstance(value, str) for value in ids):
        raise ValidationFailed(f"{name} must be a list of at most {MAX_BATCH_IDS} numeric ids")
    status_ids = [parse_id(value, name=name) for value in ids]
    return [value for value in status_ids if value is not None]


async def get_status(request: web.Request) -> web.Response:
    return json_response(await store.get_status(request.app[ENGINE], path_id(request), viewer_id=viewer(request)))


async def delete_status(request: web.Request) -> web.Response:
    account_id = parse_id(request.query.get("account_id"), name="account_id")
    if account_id is None:
        raise ValidationFailed("account_id is required")
    status = await store.delete_status(request.app[ENGINE], path_id(request), account_id=account_id)
    request.app[OUTBOX_READER].notify()
    return json_response(status)


async def context(request: web.Request) -> web.Response:
    return json_response(await store.context(request.app[ENGINE], path_id(request), viewer_id=viewer(request)))


async def favourite(request: web.Request) -> web.Response:
    account_id = required_account(await read_json_object(request))
    return json_response(await store.favourite(request.app[ENGINE], path_id(request), account_id=account_id))


async def unfavourite(request: web.Request) -> web.Response:
    account_id = required_account(await read_json_object(request))
    return json_response(await store.unfavourite(request.app[ENGINE], path_id(request), account_id=account_id))


async def reblog(request: web.Request) -> web.Response:
    account_id = required_account(await read_json_object(request))
    status = await store.reblog(request.app[ENGINE], request.app[IDS], path_id(request), account_id=account_id)
    request.app[OUTBOX_READER].notify()
    return json_response(status)


async def unreblog(request: web.Request) -> web.Response:
    account_id = required_account(await read_json_object(request))
    status = await store.unreblog(request.app[ENGINE], path_id(request), account_id=account_id)
    request.app[OUTBOX_READER].notify()
    return json_response(status)


async def account_statuses(request: web.Request) -> web.Response:
    """Return an account's statuses; with ``author_stats=true``, an object that also has their authors' stats."""
    with_author_stats = query_flag(request, "author_stats")
    statuses: list[dict[str, Any]] = []
    stats: dict[str, Any] = {}
    # This service stores no media and no pinned statuses, so those listings are empty.
    if not (query_flag(request, "pinned") or query_flag(request, "only_media")):
        page = parse_page(request.query, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)
        filters = store.AccountStatusFilter(
            exclude_replies=query_flag(request, "exclude_replies"), exclude_reblogs=query_flag(request, "exclude_reblogs")
        )
        statuses, stats = await store.account_statuses(
            request.app[ENGINE],
            path_id(request),
            page=page,
            filters=filters,
            viewer_id=viewer(request),
            with_author_stats=with_author_stats,
        )
    if with_author_stats:
        return json_response({"statuses": statuses, "author_stats": stats})
    return json_response(statuses)


async def account_statuses_lookups(request: web.Request) -> web.Response:
    """Return a batch of account statuses pages, ``{"lookups": [{"account_id": ..., ...}]}``, in order.

    Each look-up has ``account_id`` and optionally ``viewer_id``, the page parameters as strings
    and the ``exclude_replies`` and ``exclude_reblogs`` flags. Each result is what
    ``GET /internal/accounts/:id/statuses?author_stats=true`` returns for them.
    """
    pages = [_account_page(item) for item in _items(await read_json_object(request), "lookups")]
    return json_response({"results": await store.account_statuses_pages(request.app[ENGINE], pages)})


def _account_page(item: Any) -> store.AccountPage:
    if not isinstance(item, dict):
        raise ValidationFailed("each look-up must be an object with an account_id")
    account_id = body_id(item, "account_id")
    if account_id is None:
        raise ValidationFailed("each look-up must be an object with an account_id")
    params = {name: item[name] for name in PAGE_PARAMETERS if item.get(name) is not None}
    if not all(isinstance(value, str) for value in params.values()):
        raise ValidationFailed(f"{', '.join(PAGE_PARAMETERS)} must be strings")
    filters = store.AccountStatusFilter(
        exclude_replies=_strict_flag(item, "exclude_replies"), exclude_reblogs=_strict_flag(item, "exclude_reblogs")
    )
    page = parse_page(params, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)
    return store.AccountPage(account_id, page, filters, body_id(item, "viewer_id"))


async def account_stats(request: web.Request) -> web.Response:
    return json_response(await store.account_stats_for(request.app[ENGINE], query_ids(request)))


async def account_status_refs(request: web.Request) -> web.Response:
    limit = query_limit(request, default=DEFAULT_REFS, maximum=MAX_REFS)
    return json_response(await store.account_status_refs(request.app[ENGINE], path_id(request), limit=limit))


async def status_refs(request: web.Request) -> web.Response:
    after = parse_id(request.query.get("after_id"), name="after_id") or 0
    limit = query_limit(request, default=1000, maximum=MAX_REFS)
    return json_response(await store.status_refs_after(request.app[ENGINE], after_id=after, limit=limit))


async def instance_stats(request: web.Request) -> web.Response:
    return json_response(await store.instance_stats(request.app[ENGINE]))


async def progress(request: web.Request) -> web.Response:
    """Report the account-outbox consumer's cursor against that outbox's head."""
    async with read_only(request.app[ENGINE]) as connection:
        cursor = await read_cursor(connection, consumer_cursors, ServiceName.ACCOUNT)
    answer = await client(request.app, ServiceName.ACCOUNT).get("/internal/events", params={"after": BEYOND_ANY_POSITION, "limit": 1})
    head = int(answer["head"])
    return json_response({"account": cursor, "account_head": head, "caught_up": cursor >= head})
