"""The gateway: the only public service, serving the Mastodon-compatible API on port 8080.

It owns no data. It checks tokens, applies rate limits, calls the account, post
and timeline services through the internal client, and assembles responses.
Internal routes of the services are never routed here, so they cannot be reached
from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from twitter_gateway.account_events import EVENT_COVERAGE, AccountEventFollower, EventCoverage
from twitter_gateway.auth import TOKENS, TokenChecker, optional_viewer
from twitter_gateway.batching import batching_context
from twitter_gateway.hydrate import ACCOUNT_CACHE, AccountRecordCache, host_check_middleware
from twitter_gateway.openapi import openapi_document
from twitter_gateway.ratelimit import API_LIMITER, REGISTRATION_LIMITER, Decision, RateLimiter
from twitter_gateway.routes import add_routes
from twitter_gateway.views_instance import INSTANCE_STATS, InstanceStats
from twitter_shared.errors import RateLimited, ServiceError
from twitter_shared.runtime import SETTINGS, background_client, client, use_clients
from twitter_shared.settings import ServiceName, Settings
from twitter_shared.web import build_app, error_middleware, error_response

# Public request bodies are small (a status is 500 characters); anything bigger is refused early.
MAX_BODY_BYTES = 64 * 1024
RATE_LIMITED_PREFIXES = ("/api/", "/oauth/")


def create_app(settings: Settings) -> web.Application:
    app = build_app(service=ServiceName.GATEWAY, client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.middlewares.append(host_check_middleware)
    if settings.rate_limit_enabled:
        # Between the request log and error mapping, so even error responses carry the headers.
        app.middlewares.insert(app.middlewares.index(error_middleware), rate_limit_middleware)
    app[API_LIMITER] = RateLimiter(limit=settings.rate_limit_requests, period_seconds=settings.rate_limit_period_seconds)
    app[REGISTRATION_LIMITER] = RateLimiter(
        limit=settings.registration_limit, period_seconds=settings.registration_period_seconds
    )
    app[INSTANCE_STATS] = InstanceStats()
    app[EVENT_COVERAGE] = EventCoverage(seconds=settings.event_cache_seconds)
    app[ACCOUNT_CACHE] = AccountRecordCache(settings.account_cache_seconds, coverage=app[EVENT_COVERAGE])
    use_clients(app, settings=settings, targets=[ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE])
    app.cleanup_ctx.append(batching_context)
    app.cleanup_ctx.append(_token_checker)
    app.cleanup_ctx.append(_account_events)
    add_routes(app.router)
    app.router.add_get("/openapi.json", openapi_document)
    return app


async def _token_checker(app: web.Application) -> AsyncIterator[None]:
    app[TOKENS] = TokenChecker(
        accounts=client(app, ServiceName.ACCOUNT),
        cache_seconds=app[SETTINGS].token_cache_seconds,
        coverage=app[EVENT_COVERAGE],
    )
    yield


async def _account_events(app: web.Application) -> AsyncIterator[None]:
    """Follow the account events for as long as the app runs, unless ``event_cache_seconds`` is 0."""
    if app[EVENT_COVERAGE].seconds <= 0:
        yield
        return
    follower = AccountEventFollower(
        accounts=background_client(app, ServiceName.ACCOUNT),
        coverage=app[EVENT_COVERAGE],
        tokens=app[TOKENS],
        records=app[ACCOUNT_CACHE],
    )
    task = asyncio.create_task(follower.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Count the request against its account (or its address without a valid token) and registrations per address."""
    if not request.path.startswith(RATE_LIMITED_PREFIXES):
        return await handler(request)
    decision = request.app[API_LIMITER].hit(await _client_key(request))
    if decision.allowed and request.method == "POST" and request.path == "/api/v1/accounts":
        decision = _tighter(decision, request.app[REGISTRATION_LIMITER].hit(f"address:{client_address(request)}"))
    if not decision.allowed:
        return error_response(RateLimited(), headers=decision.headers())
    response = await handler(request)
    response.headers.update(decision.headers())
    return response


async def _client_key(request: web.Request) -> str:
    try:
        viewer = await optional_viewer(request)
    except ServiceError:
        viewer = None  # the handler reports the bad token; the limit falls on the address
    if viewer is not None and viewer.account_id is not None:
        return f"account:{viewer.account_id}"
    return f"address:{client_address(request)}"


def client_address(request: web.Request) -> str:
    """Return the client's address, read from X-Forwarded-For behind the configured number of proxies.

    Each trusted proxy appends the address it received the request from, so the
    entry that many places from the right is the one no client can forge.
    """
    trusted = request.app[SETTINGS].trusted_proxies
    if trusted == 0:
        return request.remote or "unknown"
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if len(forwarded) < trusted:
        return request.remote or "unknown"
    return forwarded[-trusted]


def _tighter(first: Decision, second: Decision) -> Decision:
    if not second.allowed or second.remaining < first.remaining:
        return second
    return first
