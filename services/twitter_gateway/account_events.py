"""Follow the account service's events, so the gateway's caches drop what changed within moments.

The gateway keeps checked tokens (``auth.TokenChecker``) and the account records
it embeds in statuses (``hydrate.AccountRecordCache``). A change made through this
process drops its entries at once. A change made elsewhere (another gateway
replica, the ``delete-account`` command) reaches the account service's outbox in
the same transaction: follows change both accounts' counts, profile edits and
deletions change records, and revocations and deletions end tokens.
``AccountEventFollower`` reads that outbox from its head and drops the entries
each event touches.

While the follower keeps up, entries stay for ``EventCoverage.seconds``, which
saves most token checks and account reads. When it falls behind or loses the
account service, the caches fall back to their own short lifetimes. It resumes
from its position, so no event is skipped, and the longer lifetime applies again
once it has caught up.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from twitter_shared.client import InternalClient
from twitter_shared.errors import ServiceError
from twitter_shared.outbox import BEYOND_ANY_POSITION

if TYPE_CHECKING:  # for annotations only, because both modules import this one for EventCoverage
    from twitter_gateway.auth import TokenChecker
    from twitter_gateway.hydrate import AccountRecordCache

log = structlog.get_logger()

# How long one read of the outbox waits for an event before it returns empty.
WAIT_SECONDS = 5.0
# Coverage lapses when no read has returned for this long past its wait.
CONFIRM_MARGIN_SECONDS = 5.0
EVENTS_PER_READ = 500
FIRST_RETRY_SECONDS = 0.5
# Short, because the caches keep only their short lifetimes until the follower is back.
MAX_RETRY_SECONDS = 2.0


class EventCoverage:
    """Whether the account events are being applied, and how long cache entries may stay while they are."""

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        # When the follower last found itself caught up with the outbox (monotonic seconds).
        self.caught_up_at = -math.inf

    def covers(self, now: float) -> bool:
        """Return True when every event up to about ``now`` has been applied to the caches."""
        return self.seconds > 0 and now - self.caught_up_at <= WAIT_SECONDS + CONFIRM_MARGIN_SECONDS

    def keeps(self, stored_at: float, now: float) -> bool:
        """Return True when an entry stored at ``stored_at`` may still be used, whatever its own lifetime."""
        return now - stored_at < self.seconds and self.covers(now)


EVENT_COVERAGE = web.AppKey("event_coverage", EventCoverage)


class AccountEventFollower:
    """A reader of the account service's outbox that drops the cache entries its events make out of date."""

    def __init__(
        self, *, accounts: InternalClient, coverage: EventCoverage, tokens: TokenChecker, records: AccountRecordCache
    ) -> None:
        self.accounts = accounts
        self.coverage = coverage
        self.tokens = tokens
        self.records = records

    async def run(self) -> None:
        """Follow the outbox until cancelled, retrying with backoff after each failure."""
        position: int | None = None
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                position = await self._read_once(position)
                delay = FIRST_RETRY_SECONDS
            except ServiceError as error:
                # Events may be committed while this follower cannot read them (the account service
                # restarting, say), so the caches fall back to their short lifetimes at once.
                self.coverage.caught_up_at = -math.inf
                log.warning(
                    "account_events.read_failed",
                    error=error.message,
                    position=position,
                    action=f"caches keep their short lifetimes until caught up; retrying in {delay:.1f} s",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _read_once(self, position: int | None) -> int:
        """Apply the next events after ``position`` (the head, at first) and return the new position."""
        if position is None:
            head = await self._head()
            log.info("account_events.following", position=head)
            return head
        answer = await self.accounts.request(
            "GET",
            "/internal/events",
            params={"after": position, "limit": EVENTS_PER_READ, "wait_ms": int(WAIT_SECONDS * 1000)},
            timeout_seconds=WAIT_SECONDS + CONFIRM_MARGIN_SECONDS,
        )
        head = int(answer["head"])
        if head < position:
            # The outbox is behind this follower, which happens when the account database is restored from a backup.
            log.warning("account_events.outbox_rewound", position=position, head=head, action="emptying the caches")
            self.tokens.clear()
            self.records.clear()
            return head
        for event in answer["events"]:
            self.apply(event["kind"], event["payload"])
            position = int(event["position"])
        if position >= head:
            self.coverage.caught_up_at = time.monotonic()
        return position

    async def _head(self) -> int:
        answer = await self.accounts.get("/internal/events", params={"after": BEYOND_ANY_POSITION, "limit": 1})
        return int(answer["head"])

    def apply(self, kind: str, payload: dict[str, Any]) -> None:
        """Drop the cache entries that one event makes out of date."""
        if kind in ("follow.created", "follow.deleted"):
            self.records.forget(payload["follower_id"], payload["followee_id"])
        elif kind == "account.updated":
            self.records.forget(payload["account_id"])
        elif kind == "token.revoked":
            self.tokens.forget_hash(payload["token_sha256"])
        elif kind == "account.deleted":
            self.tokens.forget_account(int(payload["account_id"]))
            # The deletion also changed the follow counts of everyone it followed or was followed by.
            self.records.clear()
