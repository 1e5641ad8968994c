"""The post outbox under concurrent writers: a consumer reads every event once, in commit order."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.post.cluster import Cluster
from twitter_post.tables import outbox
from twitter_shared.database import create_engine, dispose
from twitter_shared.outbox import append_event

WRITERS = 8
STATUSES_PER_WRITER = 20


def needs_postgres(cluster: Cluster) -> None:
    if cluster.backend != "postgres":
        pytest.skip("SQLite serialises writers: the outbox gap needs concurrent commits on PostgreSQL")


async def read_like_a_consumer(cluster: Cluster, start: int, stop: asyncio.Event, seen: list[dict]) -> None:
    """Poll the outbox as fast as possible, moving the cursor to the highest position read."""
    cursor = start
    while True:
        answer = await cluster.posts.get("/internal/events", params={"after": cursor, "limit": 7})
        seen += answer["events"]
        if answer["events"]:
            cursor = answer["events"][-1]["position"]
        elif stop.is_set():
            return


async def test_concurrent_creations_each_seen_once(cluster: Cluster) -> None:
    needs_postgres(cluster)
    authors = [await cluster.new_account("writer") for _ in range(WRITERS)]
    start = (await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]
    stop = asyncio.Event()
    seen: list[dict] = []
    reader = asyncio.create_task(read_like_a_consumer(cluster, start, stop, seen))

    async def write(author: str) -> list[str]:
        return [(await cluster.post(author, f"post {n}"))["id"] for n in range(STATUSES_PER_WRITER)]

    created = [status_id for batch in await asyncio.gather(*(write(a) for a in authors)) for status_id in batch]
    stop.set()
    await reader

    positions = [event["position"] for event in seen]
    assert positions == sorted(set(positions))
    seen_ids = [e["payload"]["id"] for e in seen if e["kind"] == "status.created"]
    assert sorted(seen_ids) == sorted(created)


async def test_later_position_waits_for_earlier_commit(cluster: Cluster) -> None:
    needs_postgres(cluster)
    engine = create_engine(cluster.urls["post"])
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await append_event(first, outbox, kind="test.first", payload={})
            first_pid = await first.scalar(text("SELECT pg_backend_pid()"))

            async def append_second() -> None:
                await second.begin()
                await append_event(second, outbox, kind="test.second", payload={})
                await second.commit()

            second_task = asyncio.create_task(append_second())
            await wait_until_blocked_by(engine, first_pid)
            visible = await cluster.posts.get("/internal/events", params={"after": 1 << 62, "limit": 1})
            head_while_blocked = visible["head"]

            await first.commit()
            await second_task
        async with engine.connect() as reader:
            rows = (await reader.execute(
                text("SELECT kind, position FROM outbox WHERE kind LIKE 'test.%' ORDER BY position")
            )).all()
    finally:
        await dispose(engine)
    assert [row.kind for row in rows] == ["test.first", "test.second"]
    assert head_while_blocked < rows[0].position


async def wait_until_blocked_by(engine, blocker_pid: int) -> None:  # noqa: ANN001
    """Return once some session waits for a lock that ``blocker_pid`` holds."""
    while True:
        async with engine.connect() as probe:
            waiting = await probe.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": blocker_pid}
            )
        if waiting:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "99999999999999999999999"}, "after must be between 0 and 9223372036854775807"),
        ({"after": "-1"}, "after must be between 0"),
        ({"after": "x"}, "after must be an integer"),
        ({"limit": "0"}, "limit must be between 1"),
        ({"wait_ms": "9" * 400}, "wait_ms must be between 0 and 2147483647"),
    ],
)
async def test_events_reject_invalid_parameters(cluster: Cluster, params: dict[str, str], message: str) -> None:
    for service in (cluster.posts, cluster.accounts):
        answer = await service.get("/internal/events", params=params, expect=400)
        assert message in answer["error"]
