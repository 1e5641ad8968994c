"""Service wiring shared by the four services: internal auth, engines, clients and serving.

An app factory composes these: ``cleanup_ctx`` entries own the engine, the HTTP
session and the id lease, so they open before the first request and close after
the last one, in reverse order.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import signal
import time
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from twitter_shared.client import SERVICE_TOKEN_HEADER, CircuitBreaker, InternalClient
from twitter_shared.database import create_engine, dispose, ping
from twitter_shared.errors import Unauthorized, Unavailable
from twitter_shared.ids import IdGenerator, WorkerLease, keep_lease
from twitter_shared.internal_http import ConnectionPool
from twitter_shared.outbox import OutboxReader
from twitter_shared.settings import ServiceName, Settings
from twitter_shared.web import EXIT_CODE, READINESS_CHECKS, build_app

log = structlog.get_logger()

INTERNAL_PREFIX = "/internal/"
DATABASE_WATCH_SECONDS = 5.0
EXIT_DATABASE_LOST = 3
ENGINE = web.AppKey("engine", AsyncEngine)
IDS = web.AppKey("ids", IdGenerator)
CLIENTS = web.AppKey("clients", dict)
BACKGROUND_CLIENTS = web.AppKey("background_clients", dict)
OUTBOX_READER = web.AppKey("outbox_reader", OutboxReader)
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


def build_internal_service(service: ServiceName, settings: Settings) -> web.Application:
    """Create the app of a service that owns a database and serves only internal routes.

    It gets the shared middleware, the settings, the service-token check and its own
    database (watched, and reported in ``/readyz``); the caller adds the rest.
    """
    app = build_app(service=service, quiet_request_log=True)
    app[SETTINGS] = settings
    app.middlewares.append(internal_auth_middleware(settings.service_token.get_secret_value()))
    use_database(
        app,
        url=settings.database_url(service),
        lost_exit_seconds=settings.database_lost_exit_seconds,
        pool_size=settings.database_pool_size,
    )
    return app


def use_database(app: web.Application, *, url: str, lost_exit_seconds: float = 60.0, pool_size: int = 20) -> None:
    """Open the engine with the app, report it in ``/readyz`` and watch it.

    While the database is gone, requests fail fast with 503. If it stays gone for
    ``lost_exit_seconds``, the process stops with a non-zero exit code so that its
    supervisor (the embedded runner, Compose, Kubernetes) starts a clean one.
    """

    async def engine_context(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(url, pool_size=pool_size)
        app[ENGINE] = engine
        watchdog = asyncio.create_task(_watch_database(app, engine, lost_exit_seconds))
        yield
        watchdog.cancel()
        await dispose(engine)

    async def database_ready() -> None:
        await ping(app[ENGINE])

    app.cleanup_ctx.append(engine_context)
    app[READINESS_CHECKS].append(("database", database_ready))


async def _watch_database(app: web.Application, engine: AsyncEngine, lost_exit_seconds: float) -> None:
    failing_since: float | None = None
    while True:
        await asyncio.sleep(DATABASE_WATCH_SECONDS)
        try:
            async with asyncio.timeout(DATABASE_WATCH_SECONDS):
                await ping(engine)
        except (Unavailable, TimeoutError) as error:
            now = time.monotonic()
            failing_since = failing_since or now
            log.warning("database.unavailable", for_seconds=round(now - failing_since, 1), error=repr(error))
            if now - failing_since >= lost_exit_seconds:
                log.error("database.lost", after_seconds=lost_exit_seconds, action="exiting for a restart")
                app[EXIT_CODE].append(EXIT_DATABASE_LOST)
                os.kill(os.getpid(), signal.SIGTERM)
                return
        else:
            if failing_since is not None:
                log.info("database.recovered", after_seconds=round(time.monotonic() - failing_since, 1))
            failing_since = None


def use_outbox(app: web.Application, *, outbox: Table, poll_seconds: float) -> None:
    """Serve the app's outbox to consumers through ``OUTBOX_READER`` (mount its ``handle`` at /internal/events)."""

    async def outbox_context(app: web.Application) -> AsyncIterator[None]:
        app[OUTBOX_READER] = OutboxReader(engine=app[ENGINE], outbox=outbox, poll_seconds=poll_seconds)
        yield

    app.cleanup_ctx.append(outbox_context)


async def events(request: web.Request) -> web.Response:
    """Handle ``GET /internal/events`` for an app set up with ``use_outbox``."""
    return await request.app[OUTBOX_READER].handle(request)


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
    """Create internal clients per target service; their health counts towards ``/readyz``.

    Each target gets a client with a circuit breaker for request handling and one
    without for background work (see ``background_client``).
    """

    async def clients_context(app: web.Application) -> AsyncIterator[None]:
        pools = {target: ConnectionPool(settings.service_url(target)) for target in targets}
        token = settings.service_token.get_secret_value() if settings.service_token else ""

        def make(target: ServiceName, *, with_breaker: bool) -> InternalClient:
            breaker = CircuitBreaker(failures_to_open=settings.breaker_failures, reset_seconds=settings.breaker_reset_seconds)
            return InternalClient(
                service=str(target),
                token=token,
                timeout_seconds=settings.internal_timeout_seconds,
                retries=settings.internal_retries,
                breaker=breaker if with_breaker else None,
                pool=pools[target],
            )

        app[CLIENTS] = {target: make(target, with_breaker=True) for target in targets}
        app[BACKGROUND_CLIENTS] = {target: make(target, with_breaker=False) for target in targets}
        yield
        for pool in pools.values():
            await pool.close()

    app.cleanup_ctx.append(clients_context)
    for target in targets:
        app[READINESS_CHECKS].append((f"{target}_service", _service_alive(app, target)))


def _service_alive(app: web.Application, target: ServiceName) -> Callable:
    async def check() -> None:
        await app[BACKGROUND_CLIENTS][target].get("/healthz")

    return check


def client(app: web.Application, target: ServiceName) -> InternalClient:
    """Return the client for calls made while handling a request (it has a circuit breaker)."""
    return app[CLIENTS][target]


def background_client(app: web.Application, target: ServiceName) -> InternalClient:
    """Return the client for background loops such as outbox consumers, which back off on their own."""
    return app[BACKGROUND_CLIENTS][target]
