"""Service wiring shared by the four services: internal auth, engines, clients and serving.

An app factory composes these: ``cleanup_ctx`` entries own the engine, the HTTP
session and the id lease, so they open before the first request and close after
the last one, in reverse order.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared.client import SERVICE_TOKEN_HEADER, CircuitBreaker, InternalClient
from twitter_shared.database import create_engine, ping
from twitter_shared.errors import Unauthorized
from twitter_shared.ids import IdGenerator, WorkerLease, keep_lease
from twitter_shared.settings import ServiceName, Settings
from twitter_shared.web import READINESS_CHECKS

log = structlog.get_logger()

INTERNAL_PREFIX = "/internal/"
ENGINE = web.AppKey("engine", AsyncEngine)
IDS = web.AppKey("ids", IdGenerator)
CLIENTS = web.AppKey("clients", dict)
SETTINGS = web.AppKey("settings", Settings)


def internal_auth_middleware(token: str) -> Callable:
    """Reject internal requests that lack the service token; public routes of the service pass."""
    expected = token.encode()

    @web.middleware
    async def check_service_token(request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith(INTERNAL_PREFIX):
            offered = request.headers.get(SERVICE_TOKEN_HEADER, "").encode()
            if not hmac.compare_digest(offered, expected):
                raise Unauthorized("Missing or wrong service token")
        return await handler(request)

    return check_service_token


def use_database(app: web.Application, *, url: str) -> None:
    """Open the engine with the app and report it in ``/readyz``."""

    async def engine_context(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(url)
        app[ENGINE] = engine
        yield
        await engine.dispose()

    async def database_ready() -> None:
        await ping(app[ENGINE])

    app.cleanup_ctx.append(engine_context)
    app[READINESS_CHECKS].append(("database", database_ready))


def use_ids(app: web.Application) -> None:
    """Lease an id worker number from the app's database for as long as the app runs."""

    async def ids_context(app: web.Application) -> AsyncIterator[None]:
        lease = WorkerLease(app[ENGINE])
        worker = await lease.acquire()
        generator = IdGenerator(worker=worker)
        app[IDS] = generator
        renewal = asyncio.create_task(keep_lease(lease, generator))
        yield
        renewal.cancel()
        try:
            await lease.release()
        except Exception as error:  # noqa: BLE001 - the lease expires by itself; shutting down goes on
            log.warning("ids.release_failed", error=repr(error))

    app.cleanup_ctx.append(ids_context)


def use_clients(app: web.Application, *, settings: Settings, targets: list[ServiceName]) -> None:
    """Create one internal client per target service; their health counts towards ``/readyz``."""

    async def clients_context(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=30)
        session = aiohttp.ClientSession(connector=connector)
        token = settings.service_token.get_secret_value() if settings.service_token else ""
        app[CLIENTS] = {
            target: InternalClient(
                service=str(target),
                base_url=settings.service_url(target),
                token=token,
                timeout_seconds=settings.internal_timeout_seconds,
                retries=settings.internal_retries,
                breaker=CircuitBreaker(
                    failures_to_open=settings.breaker_failures, reset_seconds=settings.breaker_reset_seconds
                ),
                session=session,
            )
            for target in targets
        }
        yield
        await session.close()

    app.cleanup_ctx.append(clients_context)
    for target in targets:
        app[READINESS_CHECKS].append((f"{target}_service", _service_alive(app, target)))


def _service_alive(app: web.Application, target: ServiceName) -> Callable:
    async def check() -> None:
        await app[CLIENTS][target].get("/healthz")

    return check


def client(app: web.Application, target: ServiceName) -> InternalClient:
    return app[CLIENTS][target]
