"""A batch of events yields to the event loop between events, so reads run while it is applied."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from twitter_shared.outbox import Event
from twitter_timeline import events as timeline_events
from twitter_timeline.events import TimelineEvents


async def test_batch_lets_other_tasks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    async def serialise(_connection: Any) -> None:
        return None

    async def fan_out(_connection: Any, ref: Any) -> None:
        order.append(f"event {ref.status_id}")  # like an inline SQLite statement: no await inside

    async def reader() -> None:
        while True:
            order.append("read")
            await asyncio.sleep(0)

    monkeypatch.setattr(timeline_events.store, "serialise_batches", serialise)
    monkeypatch.setattr(timeline_events.store, "fan_out", fan_out)
    batch = [Event(n, "status.created", {"id": str(n), "account_id": "1", "reblog_of_id": None}) for n in (1, 2, 3)]
    reading = asyncio.create_task(reader())
    await asyncio.sleep(0)
    order.clear()

    await TimelineEvents(posts=None, cap=800).apply_post_events(None, batch)  # type: ignore[arg-type]
    reading.cancel()

    events_at = [index for index, item in enumerate(order) if item.startswith("event")]
    assert len(events_at) == 3
    assert all(later - earlier > 1 for earlier, later in zip(events_at, events_at[1:])), order
