"""OAuth endpoints: app registration, token grants and revocation (RFC 6749 and 7009 as Mastodon uses them)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from twitter_gateway.auth import TOKENS
from twitter_shared.errors import BadRequest
from twitter_shared.runtime import client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response, read_json_object


def with_basic_client_credentials(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Take client_id and client_secret from HTTP Basic authentication when the body lacks them (RFC 6749 2.3.1)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or "client_id" in body:
        return body
    try:
        client_id, _, client_secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise BadRequest("Invalid Basic authentication header") from error
    return {**body, "client_id": unquote_plus(client_id), "client_secret": unquote_plus(client_secret)}


async def create_app(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    app = await client(request.app, ServiceName.ACCOUNT).post("/internal/apps", body=body)
    return json_response(app)


async def grant_token(request: web.Request) -> web.Response:
    body = with_basic_client_credentials(request, await read_json_object(request))
    token = await client(request.app, ServiceName.ACCOUNT).post("/internal/tokens", body=body)
    return json_response(token)


async def revoke_token(request: web.Request) -> web.Response:
    body = with_basic_client_credentials(request, await read_json_object(request))
    await client(request.app, ServiceName.ACCOUNT).post("/internal/tokens/revoke", body=body, idempotent=True)
    if isinstance(body.get("token"), str):
        request.app[TOKENS].forget(body["token"])
    return json_response({})
