"""OAuth endpoints: app registration, token grants and revocation (RFC 6749 and 7009 as Mastodon uses them)."""

from __future__ import annotations

from aiohttp import web

from twitter_shared.runtime import client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response, read_json_object


async def create_app(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    app = await client(request.app, ServiceName.ACCOUNT).post("/internal/apps", body=body)
    return json_response(app)


async def grant_token(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    token = await client(request.app, ServiceName.ACCOUNT).post("/internal/tokens", body=body)
    return json_response(token)


async def revoke_token(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await client(request.app, ServiceName.ACCOUNT).post("/internal/tokens/revoke", body=body, idempotent=True)
    return json_response({})
