"""Apply the account service's events to the post database.

Only ``account.deleted`` concerns posts: the account's statuses go (with the
reblogs others made of them), and so do its favourites and reblogs, each
removal announced by a ``status.deleted`` event. Applying it twice finds
nothing left the second time, which makes replays harmless.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from twitter_post.removal import delete_account_content
from twitter_shared.outbox import Event

log = structlog.get_logger()


async def apply_account_events(connection: AsyncConnection, events: list[Event]) -> None:
    for event in events:
        if event.kind != "account.deleted":
            continue
        account_id = int(event.payload["account_id"])
        removed = await delete_account_content(connection, account_id)
        log.info("post.account_content_deleted", account_id=account_id, statuses=removed)
