"""Snowflake ids: unique and increasing per process, and worker numbers never shared between processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from twitter_shared.database import create_engine, dispose
from twitter_shared.ids import IdGenerator, WorkerLease, id_for_time, time_of_id
from twitter_shared.settings import ServiceName


def test_ids_increase_and_never_repeat() -> None:
    generator = IdGenerator(worker=7)

    ids = [generator.next_id() for _ in range(50_000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(0 < value < 2**63 for value in ids)


def test_ids_of_different_workers_never_collide() -> None:
    first, second = IdGenerator(worker=1), IdGenerator(worker=2)

    ids = {first.next_id() for _ in range(5000)} | {second.next_id() for _ in range(5000)}

    assert len(ids) == 10_000


def test_id_carries_its_creation_time() -> None:
    before = datetime.now(UTC)
    snowflake = IdGenerator(worker=3).next_id()

    moment = time_of_id(snowflake)

    assert abs((moment - before).total_seconds()) < 5
    assert id_for_time(moment) <= snowflake


@pytest.mark.parametrize("worker", [-1, 1024])
def test_worker_outside_ten_bits_is_rejected(worker: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        IdGenerator(worker=worker)


async def test_concurrent_leases_get_distinct_worker_numbers(database_urls: dict[ServiceName, str]) -> None:
    engine = create_engine(database_urls[ServiceName.ACCOUNT])
    try:
        # Many processes starting at once, as the replicas of one service do.
        leases = [WorkerLease(engine) for _ in range(24)]

        workers = await asyncio.gather(*(lease.acquire() for lease in leases))

        assert len(set(workers)) == 24
        assert await leases[0].renew() is True
    finally:
        await dispose(engine)


async def test_released_number_is_reused_and_old_holder_loses_it(database_urls: dict[ServiceName, str]) -> None:
    engine = create_engine(database_urls[ServiceName.ACCOUNT])
    try:
        first = WorkerLease(engine)
        number = await first.acquire()
        await first.release()

        second = WorkerLease(engine)
        again = await second.acquire()

        assert again == number
        assert await first.renew() is False
        assert await second.renew() is True
    finally:
        await dispose(engine)
