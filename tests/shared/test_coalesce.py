"""The coalescer: keys requested in one pass of the event loop leave in one batch, and each caller gets its own result."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from twitter_shared.coalesce import Coalescer
from twitter_shared.errors import Unavailable


class Recorder:
    """A ``send`` that records each batch and returns ``key * 10`` for each key, or raises ``fail_with``."""

    def __init__(self, *, fail_with: Exception | None = None, answers: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.request_ids: list[object] = []
        self.services: list[object] = []
        self.fail_with = fail_with
        self.answers = answers
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, keys: list[int]) -> list[int]:
        self.batches.append(keys)
        self.request_ids.append(structlog.contextvars.get_contextvars().get("request_id"))
        self.services.append(structlog.contextvars.get_contextvars().get("service"))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        results = [key * 10 for key in keys]
        return results[: self.answers] if self.answers is not None else results


async def test_coalescer_batches_one_pass() -> None:
    send = Recorder()
    coalescer = Coalescer("test", send, max_batch=8)

    answers = await asyncio.gather(*(coalescer.load(key) for key in (3, 1, 2, 1)))

    assert answers == [30, 10, 20, 10]
    assert send.batches == [[3, 1, 2, 1]]


async def test_coalescer_sends_lone_key_at_once() -> None:
    send = Recorder()
    coalescer = Coalescer("test", send, max_batch=8)

    assert await asyncio.wait_for(coalescer.load(7), timeout=1) == 70
    assert await coalescer.load(8) == 80
    assert send.batches == [[7], [8]]


async def test_coalescer_waits_a_pass_while_busy() -> None:
    send = Recorder()
    send.release.clear()
    coalescer = Coalescer("test", send, max_batch=8)
    first = asyncio.ensure_future(coalescer.load(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    async def one_pass_later(key: int) -> int:
        await asyncio.sleep(0)
        return await coalescer.load(key)

    waiting = asyncio.gather(coalescer.load(2), one_pass_later(3))
    for _ in range(5):
        await asyncio.sleep(0)
    in_flight = [list(batch) for batch in send.batches]
    send.release.set()

    assert await first == 10
    assert await waiting == [20, 30]
    assert in_flight == [[1], [2, 3]]


async def test_coalescer_splits_at_max_batch() -> None:
    send = Recorder()
    send.release.clear()
    coalescer = Coalescer("test", send, max_batch=3)

    waiting = asyncio.gather(*(coalescer.load(key) for key in range(7)))
    for _ in range(5):
        await asyncio.sleep(0)
    in_flight = [list(batch) for batch in send.batches]
    send.release.set()

    assert await waiting == [key * 10 for key in range(7)]
    assert in_flight == [[0, 1, 2], [3, 4, 5], [6]]


async def test_coalescer_failure_reaches_every_caller() -> None:
    send = Recorder(fail_with=Unavailable("The post service is unavailable"))
    coalescer = Coalescer("test", send, max_batch=8)

    async def load_as(request_id: str, key: int) -> int:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await coalescer.load(key)

    with structlog.testing.capture_logs() as logs:
        results = await asyncio.gather(load_as("first", 1), load_as("second", 2), return_exceptions=True)
    send.fail_with = None

    assert [type(result) for result in results] == [Unavailable, Unavailable]
    failures = [entry for entry in logs if entry["event"] == "batch.failed"]
    assert [(entry["call"], entry["request_ids"]) for entry in failures] == [("test", ["first", "second"])]
    assert "The post service is unavailable" in failures[0]["error"]
    assert await coalescer.load(3) == 30


async def test_coalescer_rejects_wrong_result_count() -> None:
    coalescer = Coalescer("test", Recorder(answers=1), max_batch=8)

    results = await asyncio.gather(coalescer.load(1), coalescer.load(2), return_exceptions=True)

    assert all(isinstance(result, RuntimeError) and "a batch of 2 keys got 1 results" in str(result) for result in results)


async def test_coalescer_survives_cancelled_caller() -> None:
    send = Recorder()
    send.release.clear()
    coalescer = Coalescer("test", send, max_batch=8)

    first = asyncio.create_task(coalescer.load(1))
    second = asyncio.create_task(coalescer.load(2))
    await asyncio.sleep(0.01)
    first.cancel()
    send.release.set()

    assert await second == 20
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_coalescer_batch_has_own_request_id() -> None:
    send = Recorder()
    structlog.contextvars.bind_contextvars(service="gateway")
    coalescer = Coalescer("test", send, max_batch=8)
    structlog.contextvars.unbind_contextvars("service")

    async def load_as(request_id: str, key: int) -> int:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await coalescer.load(key)

    await asyncio.gather(load_as("first-request", 1), load_as("second-request", 2))

    assert len(send.request_ids) == 1
    assert send.request_ids[0] not in (None, "first-request", "second-request")
    assert send.services == ["gateway"]


async def test_coalescer_reports_batch_sizes() -> None:
    sizes: list[int] = []
    coalescer = Coalescer("test", Recorder(), max_batch=2, observe=sizes.append)

    await asyncio.gather(*(coalescer.load(key) for key in range(5)))

    assert sizes == [2, 2, 1]
