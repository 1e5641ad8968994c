"""Public account endpoints: registration, profiles, look-ups, follows and relationships."""

from __future__ import annotations

from aiohttp import web

from twitter_gateway.auth import optional_viewer, require_user, require_viewer
from twitter_gateway.hydrate import account_entities, account_entity_for, forget_accounts
from twitter_gateway.links import pagination_link
from twitter_shared.errors import NotFound, ValidationFailed
from twitter_shared.pagination import parse_id, parse_page
from twitter_shared.runtime import SETTINGS, client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response, read_json_object

MAX_RELATIONSHIP_IDS = 100
FOLLOW_PAGE_DEFAULT = 40
FOLLOW_PAGE_MAX = 80


def path_account_id(request: web.Request) -> int:
    value = parse_id(request.match_info["id"], name="id")
    if value is None:
        raise NotFound()
    return value


async def register(request: web.Request) -> web.Response:
    viewer = await require_viewer(request)
    fields = await read_json_object(request)
    result = await client(request.app, ServiceName.ACCOUNT).post(
        "/internal/accounts",
        body={"fields": fields, "app_id": str(viewer.app_id) if viewer.app_id else None, "scopes": " ".join(sorted(viewer.scopes))},
    )
    return json_response(result["token"])


async def verify_credentials(request: web.Request) -> web.Response:
    account_id = await require_user(request, "read:accounts", "profile")
    return json_response(await account_entity_for(request, account_id, with_source=True))


async def update_credentials(request: web.Request) -> web.Response:
    account_id = await require_user(request, "write:accounts")
    fields = await read_json_object(request)
    changes = {key: fields[key] for key in ("display_name", "note") if key in fields}
    # Forgotten even when the call fails: a timed-out change may still have been saved.
    try:
        await client(request.app, ServiceName.ACCOUNT).request(
            "PATCH", f"/internal/accounts/{account_id}", body=changes, idempotent=True
        )
    finally:
        forget_accounts(request, account_id)
    return json_response(await account_entity_for(request, account_id, with_source=True))


async def get_account(request: web.Request) -> web.Response:
    await optional_viewer(request)
    return json_response(await account_entity_for(request, path_account_id(request)))


async def lookup(request: web.Request) -> web.Response:
    await optional_viewer(request)
    acct = request.query.get("acct", "").strip().lstrip("@")
    username, _, domain = acct.partition("@")
    if not username:
        raise ValidationFailed("acct is required")
    if domain and domain.lower() != request.app[SETTINGS].instance_domain.lower():
        raise NotFound()  # this server does not federate, so remote accounts are never known
    account = await client(request.app, ServiceName.ACCOUNT).get("/internal/accounts/lookup", params={"username": username})
    return json_response(await account_entity_for(request, account["id"]))


async def follow(request: web.Request) -> web.Response:
    account_id = await require_user(request, "write:follows", "follow")
    target = path_account_id(request)
    try:
        relationship = await client(request.app, ServiceName.ACCOUNT).post(
            f"/internal/accounts/{account_id}/follow", body={"target_id": str(target)}
        )
    finally:
        forget_accounts(request, account_id, target)  # both follow counts change, even after a timeout
    return json_response(relationship)


async def unfollow(request: web.Request) -> web.Response:
    account_id = await require_user(request, "write:follows", "follow")
    target = path_account_id(request)
    try:
        relationship = await client(request.app, ServiceName.ACCOUNT).post(
            f"/internal/accounts/{account_id}/unfollow", body={"target_id": str(target)}, idempotent=True
        )
    finally:
        forget_accounts(request, account_id, target)
    return json_response(relationship)


async def relationships(request: web.Request) -> web.Response:
    account_id = await require_user(request, "read:follows", "follow")
    raw_ids = request.query.getall("id[]", []) + request.query.getall("id", [])
    if len(raw_ids) > MAX_RELATIONSHIP_IDS:
        raise ValidationFailed(f"at most {MAX_RELATIONSHIP_IDS} ids per request")
    # One relationship per account, however often it is asked for, in the order first asked.
    target_ids = list(dict.fromkeys(parse_id(raw, name="id") for raw in raw_ids))
    if not target_ids:
        return json_response([])
    result = await client(request.app, ServiceName.ACCOUNT).get(
        f"/internal/accounts/{account_id}/relationships", params={"ids": ",".join(str(t) for t in target_ids)}
    )
    return json_response(result)


async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, "followers")


async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, "following")


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    await optional_viewer(request)
    account_id = path_account_id(request)
    page = parse_page(request.query, default_limit=FOLLOW_PAGE_DEFAULT, max_limit=FOLLOW_PAGE_MAX)
    items = await client(request.app, ServiceName.ACCOUNT).get(
        f"/internal/accounts/{account_id}/{direction}", params=page.as_params()
    )
    entities = await account_entities(request, [item["account"]["id"] for item in items])
    body = [entities[item["account"]["id"]] for item in items if item["account"]["id"] in entities]
    headers = pagination_link(
        request,
        newest_cursor=items[0]["cursor"] if items else None,
        oldest_cursor=items[-1]["cursor"] if items else None,
        limit=page.limit,
    )
    return json_response(body, headers=headers)
