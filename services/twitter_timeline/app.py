"""The timeline service: materialised home timelines fed by the account and post outboxes.

Background tasks live as long as the app: one consumer per source outbox and
the periodic trim that keeps each timeline at ``timeline_max_entries``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from twitter_shared.consumer import OutboxConsumer
from twitter_shared.errors import ServiceError
from twitter_shared.runtime import ENGINE, SETTINGS, background_client, build_internal_service, use_clients
from twitter_shared.settings import ServiceName, Settings
from twitter_timeline import store, views
from twitter_timeline.events import TimelineEvents
from twitter_timeline.tables import consumer_cursors, consumer_leases

log = structlog.get_logger()

CONSUMERS = web.AppKey("consumers", dict)
# Timelines grow past the cap for at most this long. Each trim costs one indexed
# GROUP BY over the table plus one DELETE per owner above the cap.
TRIM_INTERVAL_SECONDS = 60


def create_app(settings: Settings) -> web.Application:
    app = build_internal_service(ServiceName.TIMELINE, settings)
    use_clients(app, settings=settings, targets=[ServiceName.ACCOUNT, ServiceName.POST])
    app.cleanup_ctx.append(_background_tasks)
    app.router.add_get(r"/internal/timelines/{owner_id:\d+}", views.home_timeline)
    app.router.add_get("/internal/timelines", views.home_timelines)
    app.router.add_get("/internal/progress", views.progress)
    app.router.add_post("/internal/timelines/trim", views.trim)
    return app


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    handlers = TimelineEvents(posts=background_client(app, ServiceName.POST), cap=settings.timeline_max_entries)
    consumers = {
        source: OutboxConsumer(
            source=source,
            client=background_client(app, source),
            engine=app[ENGINE],
            cursors=consumer_cursors,
            leases=consumer_leases,
            apply=apply,
        )
        for source, apply in (
            (ServiceName.ACCOUNT, handlers.apply_account_events),
            (ServiceName.POST, handlers.apply_post_events),
        )
    }
    app[CONSUMERS] = consumers
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers.values()]
    tasks.append(asyncio.create_task(_trim_periodically(app)))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for consumer in consumers.values():
        try:
            await consumer.lease.release()
        except ServiceError as error:
            log.warning("timeline.lease_release_failed", source=consumer.source, error=error.message)


async def _trim_periodically(app: web.Application) -> None:
    cap = app[SETTINGS].timeline_max_entries
    while True:
        await asyncio.sleep(TRIM_INTERVAL_SECONDS)
        try:
            removed = await store.trim_timelines(app[ENGINE], cap=cap)
        except ServiceError as error:
            log.warning("timeline.trim_failed", error=error.message, retry_in_seconds=TRIM_INTERVAL_SECONDS)
            continue
        if removed:
            log.info("timeline.trimmed", entries=removed, cap=cap)
