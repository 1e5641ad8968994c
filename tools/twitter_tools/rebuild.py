"""``twitter-system rebuild-timelines``: regenerate every home timeline from the account and post services.

It needs the two services running (their internal URLs and the service token
come from the settings) and the timeline database migrated. A running timeline
service may stay up: the rebuild takes its consumer leases over and hands them
back when done, and the service resumes from the positions the rebuild set.
"""

from __future__ import annotations

import argparse
import asyncio

import structlog

from twitter_shared.client import CircuitBreaker, InternalClient
from twitter_shared.database import create_engine, dispose
from twitter_shared.errors import ServiceError
from twitter_shared.internal_http import ConnectionPool
from twitter_shared.logs import configure_logging
from twitter_shared.settings import ServiceName, Settings
from twitter_timeline.rebuild import RebuildFailed, RebuildReport, rebuild_timelines

log = structlog.get_logger()

# A rebuild reads large pages; each call gets longer than a request-path call would.
REBUILD_CALL_TIMEOUT_SECONDS = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-entries",
        type=int,
        default=None,
        help="entries kept per timeline (default: TWITTER_TIMELINE_MAX_ENTRIES, 800)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="rebuild", log_format=settings.log_format, level=settings.log_level)
    if settings.service_token is None:
        log.error("rebuild.missing_setting", setting="TWITTER_SERVICE_TOKEN", action="set it to the services' token")
        return 2
    cap = args.max_entries if args.max_entries is not None else settings.timeline_max_entries
    if cap < 1:
        log.error("rebuild.invalid_argument", max_entries=cap, action="pass a positive number")
        return 2
    try:
        report = asyncio.run(rebuild_with_settings(settings, cap=cap))
    except (RebuildFailed, ServiceError) as error:
        log.error("rebuild.failed", error=str(error), action="the old timelines are unchanged; fix the cause and rerun")
        return 1
    print(
        f"Rebuilt {report.owners} home timelines ({report.entries} entries) "
        f"from {report.follows} follows and {report.statuses} statuses."
    )
    return 0


async def rebuild_with_settings(settings: Settings, *, cap: int) -> RebuildReport:
    engine = create_engine(settings.database_url(ServiceName.TIMELINE))
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    try:
        async with (
            ConnectionPool(settings.service_url(ServiceName.ACCOUNT)) as account_pool,
            ConnectionPool(settings.service_url(ServiceName.POST)) as post_pool,
        ):
            pools = {ServiceName.ACCOUNT: account_pool, ServiceName.POST: post_pool}
            clients = {
                target: InternalClient(
                    service=str(target),
                    token=token,
                    timeout_seconds=REBUILD_CALL_TIMEOUT_SECONDS,
                    retries=settings.internal_retries,
                    breaker=CircuitBreaker(failures_to_open=settings.breaker_failures, reset_seconds=settings.breaker_reset_seconds),
                    pool=pools[target],
                )
                for target in pools
            }
            return await rebuild_timelines(
                engine=engine, accounts=clients[ServiceName.ACCOUNT], posts=clients[ServiceName.POST], cap=cap
            )
    finally:
        await dispose(engine)
