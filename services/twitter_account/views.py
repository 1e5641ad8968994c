"""Internal HTTP handlers of the account service; the gateway is their only caller."""

from __future__ import annotations

from aiohttp import web

from twitter_account import store
from twitter_account.validation import check_profile
from twitter_shared.errors import ValidationFailed
from twitter_shared.pagination import MAX_BATCH_IDS, parse_id, parse_page, path_id, query_ids
from twitter_shared.runtime import ENGINE, IDS, OUTBOX_READER
from twitter_shared.web import json_response, read_json_object

MAX_FOLLOW_PAGE = 80


async def create_app(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    return json_response(await store.create_app(request.app[ENGINE], request.app[IDS], fields=body))


async def grant_token(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    return json_response(await store.grant_token(request.app[ENGINE], request.app[IDS], fields=body))


async def authorize(request: web.Request) -> web.Response:
    return json_response(await store.authorize(request.app[ENGINE], fields=await read_json_object(request)))


async def revoke_token(request: web.Request) -> web.Response:
    await store.revoke_token(request.app[ENGINE], fields=await read_json_object(request))
    request.app[OUTBOX_READER].notify()
    return json_response({})


async def introspect(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise ValidationFailed("token is required")
    return json_response(await store.introspect(request.app[ENGINE], token=token))


async def register(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise ValidationFailed("fields must be an object")
    app_id = parse_id(body.get("app_id"), name="app_id") if body.get("app_id") else None
    scopes = store.normalise_scopes(body.get("scopes"))
    result = await store.register(request.app[ENGINE], request.app[IDS], fields=fields, app_id=app_id, scopes=scopes)
    return json_response(result)


async def get_accounts(request: web.Request) -> web.Response:
    return json_response(await store.get_accounts(request.app[ENGINE], query_ids(request)))


async def get_account(request: web.Request) -> web.Response:
    return json_response(await store.get_account(request.app[ENGINE], path_id(request)))


async def lookup(request: web.Request) -> web.Response:
    username = request.query.get("username", "")
    if not username:
        raise ValidationFailed("username is required")
    return json_response(await store.lookup(request.app[ENGINE], username=username))


async def ids_by_username(request: web.Request) -> web.Response:
    usernames = [name for name in request.query.get("usernames", "").split(",") if name][:MAX_BATCH_IDS]
    return json_response(await store.ids_by_username(request.app[ENGINE], usernames))


async def update_profile(request: web.Request) -> web.Response:
    changes = check_profile(await read_json_object(request))
    account = await store.update_profile(request.app[ENGINE], path_id(request), changes=changes)
    request.app[OUTBOX_READER].notify()
    return json_response(account)


async def delete_account(request: web.Request) -> web.Response:
    await store.delete_account(request.app[ENGINE], path_id(request))
    request.app[OUTBOX_READER].notify()
    return json_response({})


async def follow(request: web.Request) -> web.Response:
    target = parse_id((await read_json_object(request)).get("target_id"), name="target_id")
    if target is None:
        raise ValidationFailed("target_id is required")
    result = await store.follow(request.app[ENGINE], request.app[IDS], follower_id=path_id(request), followee_id=target)
    request.app[OUTBOX_READER].notify()
    return json_response(result)


async def unfollow(request: web.Request) -> web.Response:
    target = parse_id((await read_json_object(request)).get("target_id"), name="target_id")
    if target is None:
        raise ValidationFailed("target_id is required")
    result = await store.unfollow(request.app[ENGINE], follower_id=path_id(request), followee_id=target)
    request.app[OUTBOX_READER].notify()
    return json_response(result)


async def relationships(request: web.Request) -> web.Response:
    result = await store.relationships(request.app[ENGINE], account_id=path_id(request), target_ids=query_ids(request))
    return json_response(result)


async def followers(request: web.Request) -> web.Response:
    return await _follow_page(request, "followers")


async def following(request: web.Request) -> web.Response:
    return await _follow_page(request, "following")


async def _follow_page(request: web.Request, direction: str) -> web.Response:
    page = parse_page(request.query, default_limit=40, max_limit=MAX_FOLLOW_PAGE)
    items = await store.follow_page(request.app[ENGINE], account_id=path_id(request), direction=direction, page=page)
    return json_response(items)


async def all_follows(request: web.Request) -> web.Response:
    after = parse_id(request.query.get("after_id"), name="after_id") or 0
    limit = min(int(request.query.get("limit", "1000") or 1000), 5000)
    return json_response(await store.follows_after(request.app[ENGINE], after_id=after, limit=limit))


async def follower_ids(request: web.Request) -> web.Response:
    return json_response(await store.follower_ids(request.app[ENGINE], account_id=path_id(request)))


async def stats(request: web.Request) -> web.Response:
    return json_response(await store.stats(request.app[ENGINE]))
