"""The post service: statuses, replies, mentions, favourites, reblogs and the post event outbox.

Besides its HTTP routes it runs two background tasks for as long as the app
lives: the consumer of the account outbox (account deletions remove their
statuses) and the hourly expiry of idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from twitter_post import store, views
from twitter_post.events import apply_account_events
from twitter_post.tables import consumer_cursors, consumer_leases, outbox
from twitter_shared.consumer import OutboxConsumer
from twitter_shared.errors import ServiceError
from twitter_shared.runtime import (
    ENGINE,
    OUTBOX_READER,
    background_client,
    build_internal_service,
    events,
    use_clients,
    use_ids,
    use_outbox,
)
from twitter_shared.settings import ServiceName, Settings

log = structlog.get_logger()

ID = r"{id:\d+}"
ACCOUNT_CONSUMER = web.AppKey("account_consumer", OutboxConsumer)
IDEMPOTENCY_PURGE_SECONDS = 300


def create_app(settings: Settings) -> web.Application:
    app = build_internal_service(ServiceName.POST, settings)
    use_ids(app)
    use_clients(app, settings=settings, targets=[ServiceName.ACCOUNT])
    use_outbox(app, outbox=outbox, poll_seconds=settings.outbox_poll_seconds)
    app.cleanup_ctx.append(_background_tasks)
    add_routes(app.router)
    return app


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    consumer = OutboxConsumer(
        source=ServiceName.ACCOUNT,
        client=background_client(app, ServiceName.ACCOUNT),
        engine=app[ENGINE],
        cursors=consumer_cursors,
        leases=consumer_leases,
        apply=apply_account_events,
    )

    async def announce_deletions() -> None:
        app[OUTBOX_READER].notify()

    consumer.on_batch_applied = announce_deletions
    app[ACCOUNT_CONSUMER] = consumer
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(_purge_idempotency_keys(app))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    try:
        await consumer.lease.release()
    except ServiceError as error:
        log.warning("post.lease_release_failed", error=error.message, action="the lease expires by itself")


async def _purge_idempotency_keys(app: web.Application) -> None:
    while True:
        await asyncio.sleep(IDEMPOTENCY_PURGE_SECONDS)
        try:
            purged = await store.purge_idempotency_keys(app[ENGINE])
        except ServiceError as error:
            log.warning("post.idempotency_purge_failed", error=error.message, retry_in_seconds=IDEMPOTENCY_PURGE_SECONDS)
            continue
        if purged:
            log.info("post.idempotency_keys_purged", count=purged)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/internal/statuses", views.create_status)
    router.add_get("/internal/statuses", views.get_statuses)
    router.add_post("/internal/statuses/lookups", views.look_up_statuses)
    router.add_post("/internal/statuses/pages", views.read_pages)
    router.add_get(f"/internal/statuses/{ID}", views.get_status)
    router.add_delete(f"/internal/statuses/{ID}", views.delete_status)
    router.add_get(f"/internal/statuses/{ID}/context", views.context)
    router.add_post(f"/internal/statuses/{ID}/favourite", views.favourite)
    router.add_post(f"/internal/statuses/{ID}/unfavourite", views.unfavourite)
    router.add_post(f"/internal/statuses/{ID}/reblog", views.reblog)
    router.add_post(f"/internal/statuses/{ID}/unreblog", views.unreblog)
    router.add_get("/internal/accounts/stats", views.account_stats)
    router.add_get(f"/internal/accounts/{ID}/statuses", views.account_statuses)
    router.add_post("/internal/accounts/statuses/lookups", views.account_statuses_lookups)
    router.add_get(f"/internal/accounts/{ID}/status-refs", views.account_status_refs)
    router.add_get("/internal/status-refs", views.status_refs)
    router.add_get("/internal/stats", views.instance_stats)
    router.add_get("/internal/events", events)
    router.add_get("/internal/progress", views.progress)
