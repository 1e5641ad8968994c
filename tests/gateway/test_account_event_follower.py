"""``AccountEventFollower`` and the cache lifetimes it allows, against a stand-in account service and a fake clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from twitter_gateway import account_events, auth, hydrate
from twitter_gateway.account_events import AccountEventFollower, EventCoverage
from twitter_gateway.auth import TokenChecker, Viewer
from twitter_gateway.hydrate import AccountRecordCache
from twitter_shared.errors import Unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    for module in (account_events, auth, hydrate):
        monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


class StubAccounts:
    """Stand-in for the account service: an outbox of events, token checks that count, and scripted failures."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.head_override: int | None = None
        self.failures = 0
        self.reads_after: list[int] = []
        self.introspections = 0

    def append(self, kind: str, **payload: str) -> None:
        self.events.append({"position": len(self.events) + 1, "kind": kind, "payload": payload})

    async def get(self, path: str, *, params: dict[str, Any]) -> Any:
        return await self.request("GET", path, params=params)

    async def request(self, method: str, path: str, *, params: dict[str, Any], **options: Any) -> Any:
        await asyncio.sleep(0)  # a real call suspends, and the follower's loop relies on that
        if self.failures:
            self.failures -= 1
            raise Unavailable("The account service is unavailable, try again shortly")
        after, limit = int(params["after"]), int(params["limit"])
        self.reads_after.append(after)
        head = self.head_override if self.head_override is not None else len(self.events)
        return {"events": [e for e in self.events if e["position"] > after][:limit], "head": head}

    async def post(self, path: str, *, body: dict[str, Any], idempotent: bool) -> Any:
        self.introspections += 1
        return {"account_id": "7", "app_id": "1", "scopes": "read"}


def follower_with_caches(coverage_seconds: float = 300.0) -> tuple[AccountEventFollower, StubAccounts, TokenChecker, AccountRecordCache]:
    stub = StubAccounts()
    coverage = EventCoverage(seconds=coverage_seconds)
    tokens = TokenChecker(accounts=stub, cache_seconds=5.0, coverage=coverage)  # type: ignore[arg-type]
    records = AccountRecordCache(5.0, coverage=coverage)
    follower = AccountEventFollower(accounts=stub, coverage=coverage, tokens=tokens, records=records)  # type: ignore[arg-type]
    return follower, stub, tokens, records


def keep_record(records: AccountRecordCache, account_id: str) -> None:
    records.store([{"id": account_id, "username": f"user{account_id}"}], forgets_before=records.forgets)


async def test_follower_starts_at_the_head(clock: Clock) -> None:
    follower, stub, _, records = follower_with_caches()
    stub.append("follow.created", follower_id="1", followee_id="2")
    keep_record(records, "1")

    position = await follower._read_once(None)

    assert position == 1
    assert set(records.fresh(["1"])) == {"1"}


async def test_events_drop_touched_entries(clock: Clock) -> None:
    follower, stub, tokens, records = follower_with_caches()
    for account_id in ("1", "2", "3", "4"):
        keep_record(records, account_id)
    await tokens.check("kept-token")
    await tokens.check("revoked-token")
    stub.append("follow.created", follower_id="1", followee_id="2")
    stub.append("account.updated", account_id="3")
    stub.append("token.revoked", token_sha256=auth._cache_key("revoked-token"))

    position = await follower._read_once(0)
    await tokens.check("kept-token")
    await tokens.check("revoked-token")

    assert position == 3
    assert set(records.fresh(["1", "2", "3", "4"])) == {"4"}
    assert stub.introspections == 3


async def test_deletion_drops_tokens_and_records(clock: Clock) -> None:
    follower, stub, tokens, records = follower_with_caches()
    keep_record(records, "1")
    await tokens.check("deleted-account-token")
    stub.append("account.deleted", account_id="7")

    await follower._read_once(0)
    await tokens.check("deleted-account-token")

    assert records.fresh(["1"]) == {}
    assert stub.introspections == 2


async def test_coverage_needs_catching_up(clock: Clock) -> None:
    follower, stub, _, _ = follower_with_caches()
    for _ in range(account_events.EVENTS_PER_READ + 1):
        stub.append("account.updated", account_id="1")

    first = await follower._read_once(0)
    covered_after_first = follower.coverage.covers(clock.now)
    second = await follower._read_once(first)

    assert first == account_events.EVENTS_PER_READ
    assert not covered_after_first
    assert second == account_events.EVENTS_PER_READ + 1
    assert follower.coverage.covers(clock.now)


async def test_long_lifetime_needs_coverage(clock: Clock) -> None:
    follower, stub, tokens, records = follower_with_caches()
    await follower._read_once(0)
    keep_record(records, "1")
    await tokens.check("token")

    clock.now += 8  # past the 5 s lifetime, within the coverage's confirmation window
    covered = (set(records.fresh(["1"])), await tokens.check("token"), stub.introspections)
    clock.now += 60  # no read has returned for a minute: the follower has lost the outbox
    lapsed = (set(records.fresh(["1"])), await tokens.check("token"), stub.introspections)

    assert covered == ({"1"}, Viewer(account_id=7, app_id=1, scopes=frozenset({"read"})), 1)
    assert lapsed[0] == set()
    assert lapsed[2] == 2


async def test_rewound_outbox_empties_the_caches(clock: Clock) -> None:
    follower, stub, tokens, records = follower_with_caches()
    keep_record(records, "1")
    await tokens.check("token")
    stub.head_override = 3

    position = await follower._read_once(10)
    await tokens.check("token")

    assert position == 3
    assert records.fresh(["1"]) == {}
    assert stub.introspections == 2


async def test_failed_read_resumes_in_place(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_events, "FIRST_RETRY_SECONDS", 0.001)
    follower, stub, _, _ = follower_with_caches()
    stub.append("account.updated", account_id="1")
    stub.failures = 2

    task = asyncio.create_task(follower.run())
    while len(stub.reads_after) < 3:
        await asyncio.sleep(0.001)
    task.cancel()

    assert stub.reads_after[:3] == [1 << 62, 1, 1]


async def test_zero_seconds_covers_nothing(clock: Clock) -> None:
    coverage = EventCoverage(seconds=0)
    coverage.caught_up_at = clock.now

    assert not coverage.covers(clock.now)


async def test_failed_read_ends_coverage_at_once(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_events, "FIRST_RETRY_SECONDS", 0.001)
    follower, stub, tokens, _ = follower_with_caches()
    await follower._read_once(0)
    await tokens.check("token")
    assert follower.coverage.covers(clock.now)
    clock.now += 6  # past the short lifetime, within the confirmation window
    stub.failures = 1

    task = asyncio.create_task(follower.run())
    while stub.failures:
        await asyncio.sleep(0.001)
    covered_after_failure = follower.coverage.covers(clock.now)
    task.cancel()
    await tokens.check("token")

    assert not covered_after_failure
    assert stub.introspections == 2
