"""Public status endpoints: posting, reading, threads, favourites, reblogs and timelines."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twitter_gateway.auth import optional_viewer, require_user
from twitter_gateway.batching import account_page, statuses_with_author_stats, timeline_page
from twitter_gateway.hydrate import account_records, base_url, status_entities, status_entity_for, status_list
from twitter_gateway.links import pagination_link
from twitter_gateway.render_json import Template, known_templates
from twitter_shared.errors import NotFound, ValidationFailed
from twitter_shared.pagination import PageRequest, parse_id, parse_page
from twitter_shared.runtime import client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response, read_json_object

HOME_DEFAULT_LIMIT = 20
HOME_MAX_LIMIT = 40
# When statuses vanish between the timeline read and hydration, read further, at most this often.
HOME_REFILL_ROUNDS = 3
MAX_IDEMPOTENCY_KEY = 200
BOOLEAN_FLAGS = {"exclude_replies", "exclude_reblogs", "only_media", "pinned"}
# Every status is readable by everyone here (no follower-only or direct delivery yet), so the API
# refuses the visibilities that promise otherwise rather than leak what a user meant to keep private.
SUPPORTED_VISIBILITIES = ("public", "unlisted")
# Features a client may request that this server does not have; silently ignoring them would mislead.
UNSUPPORTED_STATUS_FIELDS = ("scheduled_at", "poll", "media_ids", "quote_id", "quoted_status_id")


def path_status_id(request: web.Request) -> int:
    value = parse_id(request.match_info["id"], name="id")
    if value is None:
        raise NotFound()
    return value


def _viewer_params(account_id: int | None) -> dict[str, str]:
    return {"viewer_id": str(account_id)} if account_id is not None else {}


async def _viewer_id(request: web.Request) -> int | None:
    viewer = await optional_viewer(request)
    return viewer.account_id if viewer is not None else None


async def post_status(request: web.Request) -> web.Response:
    account_id = await require_user(request, "write:statuses")
    fields = await read_json_object(request)
    # Form clients send nested fields as ``poll[options][]``, JSON clients as ``"poll": {...}``.
    unsupported = [
        name
        for name in UNSUPPORTED_STATUS_FIELDS
        if any((key == name or key.startswith(f"{name}[")) and value not in (None, "", []) for key, value in fields.items())
    ]
    if unsupported:
        raise ValidationFailed(f"Validation failed: {', '.join(unsupported)} is not supported by this server")
    visibility = fields.get("visibility")
    if visibility not in (None, "", *SUPPORTED_VISIBILITIES):
        raise ValidationFailed(
            f"Validation failed: visibility {visibility!r} is not supported by this server; use public or unlisted"
        )
    body: dict[str, Any] = {"account_id": str(account_id)}
    for key in ("status", "in_reply_to_id", "visibility", "spoiler_text", "sensitive", "language"):
        if fields.get(key) not in (None, ""):
            body[key] = fields[key]
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
            raise ValidationFailed(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
        body["idempotency_key"] = key
    # Read before the write: with the account service down, the post fails with nothing saved,
    # instead of failing after the save and inviting a retry that posts twice.
    author = await account_records(request, [str(account_id)])
    # With a key the call may be retried safely: the post service returns the first status on a repeat.
    result = await client(request.app, ServiceName.POST).post("/internal/statuses", body=body, idempotent=key is not None)
    return json_response(
        await status_entity_for(request, result["status"], author_stats=result.get("author_stats"), author_records=author)
    )


async def get_status(request: web.Request) -> web.Response:
    status_id = path_status_id(request)
    status = await client(request.app, ServiceName.POST).get(
        f"/internal/statuses/{status_id}", params=_viewer_params(await _viewer_id(request))
    )
    return json_response(await status_entity_for(request, status))


async def delete_status(request: web.Request) -> web.Response:
    account_id = await require_user(request, "write:statuses")
    status_id = path_status_id(request)
    status = await client(request.app, ServiceName.POST).delete(
        f"/internal/statuses/{status_id}", params={"account_id": str(account_id)}
    )
    return json_response(await status_entity_for(request, status, with_text=True))


async def status_context(request: web.Request) -> web.Response:
    status_id = path_status_id(request)
    context = await client(request.app, ServiceName.POST).get(
        f"/internal/statuses/{status_id}/context", params=_viewer_params(await _viewer_id(request))
    )
    ancestors = await status_entities(request, context["ancestors"])
    descendants = await status_entities(request, context["descendants"])
    return json_response({"ancestors": ancestors, "descendants": descendants})


def status_action(action: str, *scopes: str):  # noqa: ANN201 - returns an aiohttp handler
    """Build the handler of ``POST /api/v1/statuses/:id/<action>``; these requests carry no body."""

    async def handler(request: web.Request) -> web.Response:
        account_id = await require_user(request, *scopes)
        status_id = path_status_id(request)
        status = await client(request.app, ServiceName.POST).post(
            f"/internal/statuses/{status_id}/{action}",
            body={"account_id": str(account_id)},
            idempotent=action.startswith("un"),
        )
        return json_response(await status_entity_for(request, status))

    return handler


async def account_statuses(request: web.Request) -> web.Response:
    viewer_id = await _viewer_id(request)
    account_id = parse_id(request.match_info["id"], name="id")
    page = parse_page(request.query, default_limit=HOME_DEFAULT_LIMIT, max_limit=HOME_MAX_LIMIT)
    flags = {name: _flag(request, name) for name in BOOLEAN_FLAGS if name in request.query}
    extra = {name: "true" if value else "false" for name, value in flags.items()}
    statuses: list[dict[str, Any]] = []
    author_stats: dict[str, Any] = {}
    # This server stores no media and no pinned statuses, so those listings are empty.
    if not (flags.get("pinned") or flags.get("only_media")):
        key = (account_id, page, flags.get("exclude_replies", False), flags.get("exclude_reblogs", False), viewer_id)
        answer = await account_page(request, key)
        statuses, author_stats = answer["statuses"], answer["author_stats"]
    # An unknown account is a 404, as in Mastodon, not an empty list. Its record is needed to
    # render its statuses anyway, so it is read once and handed on.
    owner = await account_records(request, [str(account_id)])
    if not owner:
        raise NotFound()
    entities = await status_list(request, statuses, author_stats=author_stats, author_records=owner)
    headers = pagination_link(
        request,
        newest_cursor=statuses[0]["id"] if statuses else None,
        oldest_cursor=statuses[-1]["id"] if statuses else None,
        limit=page.limit,
        extra=extra,
    )
    return json_response(entities, headers=headers)


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").lower()
    if raw in {"1", "true", "on", "yes"}:
        return True
    if raw in {"0", "false", "off", "no", ""}:
        return False
    raise ValidationFailed(f"{name} must be true or false")


async def home_timeline(request: web.Request) -> web.Response:
    account_id = await require_user(request, "read:statuses")
    page = parse_page(request.query, default_limit=HOME_DEFAULT_LIMIT, max_limit=HOME_MAX_LIMIT)
    ids, statuses, author_stats, pinned = await _read_home(request, account_id, page)
    entities = await status_list(request, statuses, author_stats=author_stats, pinned=pinned)
    headers = pagination_link(
        request,
        newest_cursor=ids[0] if ids else None,
        oldest_cursor=ids[-1] if ids else None,
        limit=page.limit,
    )
    return json_response(entities, headers=headers)


async def _read_home(
    request: web.Request, account_id: int, page: PageRequest
) -> tuple[list[str], list[dict[str, Any]], dict[str, Any], dict[str, Template]]:
    """Read timeline ids and their statuses; ids whose status was just deleted are skipped and refilled.

    Returns the ids the page spans (for the Link cursors), the statuses found, their authors'
    stats, and the templates of the statuses requested without their fixed fields.
    """
    spanned: list[str] = []
    found: list[dict[str, Any]] = []
    author_stats: dict[str, Any] = {}
    pinned: dict[str, Template] = {}
    current = page
    for _ in range(HOME_REFILL_ROUNDS):
        ids = await timeline_page(request, account_id, current)
        if not ids:
            break
        known = known_templates(base_url(request), ids)
        pinned.update(known)
        answer = await statuses_with_author_stats(request, ids, account_id, known=tuple(known))
        spanned.extend(ids)
        found.extend(answer["statuses"])
        author_stats.update(answer["author_stats"])
        if len(found) >= page.limit or len(ids) < current.limit:
            break
        missing = page.limit - len(found)
        # Continue in the page's direction from the last id read.
        if page.min_id is not None:
            current = PageRequest(min_id=int(ids[0]), max_id=page.max_id, limit=missing)
        else:
            current = PageRequest(max_id=int(ids[-1]), since_id=page.since_id, limit=missing)
    spanned.sort(key=int, reverse=True)
    found.sort(key=lambda status: int(status["id"]), reverse=True)
    return spanned, found[: page.limit], author_stats, pinned
