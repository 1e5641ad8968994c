"""``twitter-system delete-account ACCOUNT``: delete an account through the account service.

The account service removes the account, its tokens and follows, and appends
``account.deleted`` to its outbox. The post and timeline services consume that
event and remove the account's statuses, favourites, reblogs and timeline
entries. ACCOUNT is a numeric id or a username.
"""

from __future__ import annotations

import argparse
import asyncio

import structlog

from twitter_shared.client import CircuitBreaker, InternalClient
from twitter_shared.errors import NotFound, ServiceError
from twitter_shared.internal_http import ConnectionPool
from twitter_shared.logs import configure_logging
from twitter_shared.settings import ServiceName, Settings

log = structlog.get_logger()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("account", help="the account's numeric id or its username")


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="delete-account", log_format=settings.log_format, level=settings.log_level)
    if settings.service_token is None:
        log.error("delete_account.missing_setting", setting="TWITTER_SERVICE_TOKEN", action="set it to the services' token")
        return 2
    try:
        account_id = asyncio.run(delete_account(settings, args.account))
    except NotFound:
        log.error("delete_account.not_found", account=args.account, action="check the id or username")
        return 1
    except ServiceError as error:
        log.error("delete_account.failed", account=args.account, error=error.message, action="rerun; a deletion that reached the account service is complete")
        return 1
    print(f"Deleted account {account_id}; its statuses and timeline entries are removed in the background.")
    return 0


async def delete_account(settings: Settings, account: str) -> str:
    """Delete the account given by id or username and return its id; raise ``NotFound`` if there is none."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    async with ConnectionPool(settings.service_url(ServiceName.ACCOUNT)) as pool:
        accounts = InternalClient(
            service=str(ServiceName.ACCOUNT),
            token=token,
            timeout_seconds=settings.internal_timeout_seconds,
            retries=settings.internal_retries,
            breaker=CircuitBreaker(failures_to_open=settings.breaker_failures, reset_seconds=settings.breaker_reset_seconds),
            pool=pool,
        )
        if account.isdigit():
            account_id = account
        else:
            account_id = (await accounts.get("/internal/accounts/lookup", params={"username": account.lstrip("@")}))["id"]
        await accounts.delete(f"/internal/accounts/{account_id}")
    return account_id
