"""``twitter-system serve SERVICE``: run one service's HTTP server until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib

import structlog
import uvloop
from aiohttp import web

from twitter_shared.logs import configure_logging
from twitter_shared.migrate import MigrationError, upgrade
from twitter_shared.settings import DATABASE_OWNERS, ServiceName, Settings
from twitter_shared.web import EXIT_CODE

log = structlog.get_logger()

APP_FACTORIES = {
    ServiceName.ACCOUNT: "twitter_account.app",
    ServiceName.POST: "twitter_post.app",
    ServiceName.TIMELINE: "twitter_timeline.app",
    ServiceName.GATEWAY: "twitter_gateway.app",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=[str(name) for name in ServiceName], help="the service to serve")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply the service's database migrations before serving (safe with replicas: runs under a lock)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    service = ServiceName(args.service)
    configure_logging(service=service, log_format=settings.log_format, level=settings.log_level)
    if settings.service_token is None:
        log.error("serve.missing_setting", setting="TWITTER_SERVICE_TOKEN", action="set it; the service will not start")
        return 2
    if args.migrate and service in DATABASE_OWNERS:
        try:
            asyncio.run(upgrade(settings.database_url(service), history=service))
        except MigrationError as error:
            log.error("serve.migration_failed", error=str(error))
            return 1
    app = importlib.import_module(APP_FACTORIES[service]).create_app(settings)
    app.on_startup.append(freeze_startup_objects)
    port = settings.listen_port(service)
    log.info("serve.starting", host=settings.host, port=port)
    try:
        # uvloop's event loop and transports cost less CPU per request than asyncio's default loop.
        web.run_app(
            app,
            host=settings.host,
            port=port,
            print=None,
            access_log=None,
            shutdown_timeout=5,
            loop=uvloop.new_event_loop(),
        )
    except OSError as error:
        log.error("serve.listen_failed", host=settings.host, port=port, error=str(error))
        return 1
    except Exception as error:  # noqa: BLE001 - a start-up failure exits non-zero for the supervisor
        log.exception("serve.failed", error=repr(error))
        return 1
    exit_code = max(app[EXIT_CODE], default=0)
    log.info("serve.stopped", exit_code=exit_code)
    return exit_code


async def freeze_startup_objects(app: web.Application) -> None:
    """Exempt the objects alive once the app has started from the cyclic garbage collector.

    Full (generation 2) collections scanned every object made at start-up, such as
    modules, SQLAlchemy's and pydantic's metadata and the app. Under load that meant a
    40 to 60 ms pause several times a minute in the gateway and the post service (measured
    with a gc callback on the whole dataset), which set the 99th percentile of home reads. Frozen objects are still freed when their
    reference count drops to zero, and later garbage is collected as before.
    """
    gc.collect()
    gc.freeze()
    log.info("serve.startup_objects_frozen", objects=gc.get_freeze_count())
