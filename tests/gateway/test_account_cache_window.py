"""The gateway's ``AccountRecordCache``: records read within one window expire together, never later than ``seconds``.

The cache divides time into windows of ``seconds``; every record read in a window
is kept to that window's end. Here the cache's clock (``time.monotonic`` as seen
by ``twitter_gateway.hydrate``) is a fake the test moves by hand.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from twitter_gateway import hydrate
from twitter_gateway.hydrate import AccountRecordCache


class Clock:
    """A monotonic clock that moves only when a test advances it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(1000.0)
    monkeypatch.setattr(hydrate, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def record(account_id: str) -> dict[str, Any]:
    return {"id": account_id, "username": f"user{account_id}", "display_name": f"User {account_id}"}


def store(cache: AccountRecordCache, *account_ids: str) -> None:
    cache.store([record(account_id) for account_id in account_ids], forgets_before=cache.forgets)


def test_records_read_within_one_window_expire_together(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=10.0)
    clock.now = 1000.0
    store(cache, "1")
    clock.now = 1004.0
    store(cache, "2")
    clock.now = 1009.5
    store(cache, "3")

    clock.now = 1009.999
    before_the_end = set(cache.fresh(["1", "2", "3"]))
    clock.now = 1010.0
    at_the_end = set(cache.fresh(["1", "2", "3"]))

    assert before_the_end == {"1", "2", "3"}
    assert at_the_end == set()


def test_next_window_record_outlives_earlier(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=10.0)
    clock.now = 1008.0
    store(cache, "1")
    clock.now = 1012.0
    store(cache, "2")

    clock.now = 1015.0
    halfway = set(cache.fresh(["1", "2"]))
    clock.now = 1020.0
    at_the_end = set(cache.fresh(["1", "2"]))

    assert halfway == {"2"}
    assert at_the_end == set()


def test_fresh_returns_the_stored_records(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=5.0)
    store(cache, "1", "2")

    assert cache.fresh(["2", "1", "3"]) == {"1": record("1"), "2": record("2")}


@pytest.mark.parametrize("seconds", [10.0, 5.0, 0.3, 1.1])
def test_record_kept_at_most_seconds(clock: Clock, seconds: float) -> None:
    """Reads at many points of several windows, including their first and nearly last instants."""
    read_times = [1000.0 + step * seconds / 8 for step in range(40)] + [1000.0 + seconds * 3 - 1e-9]
    for read_at in read_times:
        cache = AccountRecordCache(seconds=seconds)
        clock.now = read_at
        store(cache, "1")

        kept_when_read = "1" in cache.fresh(["1"])
        clock.now = read_at + seconds
        kept_after_seconds = "1" in cache.fresh(["1"])

        assert kept_when_read, f"read at {read_at} was not kept at all"
        assert not kept_after_seconds, f"read at {read_at} was kept longer than {seconds} s"


def test_forget_drops_a_record_at_once(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=10.0)
    store(cache, "1", "2", "3")

    cache.forget("1", 3)

    assert set(cache.fresh(["1", "2", "3"])) == {"2"}


def test_record_read_before_a_forget_is_not_stored(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=10.0)
    forgets_before = cache.forgets

    cache.forget("1")
    cache.store([record("1"), record("2")], forgets_before=forgets_before)

    assert cache.fresh(["1", "2"]) == {}


def test_forgotten_record_read_again_is_kept_again(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=10.0)
    store(cache, "1")
    cache.forget("1")

    store(cache, "1")

    assert set(cache.fresh(["1"])) == {"1"}


def test_zero_seconds_keeps_nothing(clock: Clock) -> None:
    cache = AccountRecordCache(seconds=0.0)

    store(cache, "1")

    assert cache.fresh(["1"]) == {}
