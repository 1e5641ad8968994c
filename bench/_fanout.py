"""Fan-out delay: from a post's acknowledgement until it is in every follower's home timeline.

The author posts probes one at a time. After each acknowledgement, one follower
chosen at random reads its home timeline (``limit=1``) in a tight loop until the
probe is on top. Then every other follower's timeline is read once, and those
that lack the probe are read again until they have it. The timeline service
inserts a status into all followers' timelines with one statement in one
transaction, so all followers see it at the same moment, and the first
follower's time is the delay. The sweep checks that claim. A follower found late
makes the delay the time it was first seen (an upper bound, by the sweep's
duration).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from twitter_tools._dataset_accounts import DatasetAccount
from twitter_tools._public_client import PublicClient, client_session

PROBE_TIMEOUT_SECONDS = 30.0
PAUSE_BETWEEN_PROBES_SECONDS = 0.3
CONCURRENCY = 32


class FanoutTimeout(RuntimeError):
    """A probe did not reach every follower in time."""


@dataclass(frozen=True)
class FanoutResult:
    author: str
    followers: int
    delays_ms: list[float]
    late_followers: int  # followers that lacked a probe when the sweep read them

    def percentile(self, rank: float) -> float:
        ordered = sorted(self.delays_ms)
        index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]


async def measure_fanout(
    base_url: str, *, author: DatasetAccount, followers: list[DatasetAccount], probes: int
) -> FanoutResult:
    delays: list[float] = []
    late = 0
    async with client_session(concurrency=CONCURRENCY) as session:
        client = PublicClient(session, base_url, concurrency=CONCURRENCY)
        for number in range(probes):
            delay, late_now = await _probe(client, author, followers, text=f"fan-out probe {number} {uuid.uuid4().hex[:8]}")
            delays.append(delay * 1000)
            late += late_now
            await asyncio.sleep(PAUSE_BETWEEN_PROBES_SECONDS)
    return FanoutResult(author=author.username, followers=len(followers), delays_ms=delays, late_followers=late)


async def _probe(client: PublicClient, author: DatasetAccount, followers: list[DatasetAccount], *, text: str) -> tuple[float, int]:
    status = await client.expect("POST", "/api/v1/statuses", token=author.token, data={"status": text})
    acknowledged = time.monotonic()
    deadline = acknowledged + PROBE_TIMEOUT_SECONDS
    first = random.choice(followers)
    while not await _has_on_top(client, first, status["id"]):
        if time.monotonic() > deadline:
            raise FanoutTimeout(f"{first.username} lacked status {status['id']} after {PROBE_TIMEOUT_SECONDS} s")
    last_seen = time.monotonic()

    pending = [follower for follower in followers if follower is not first]
    late = 0
    sweep = 0
    while pending:
        present = await asyncio.gather(*(_has_on_top(client, follower, status["id"]) for follower in pending))
        missing = [follower for follower, has in zip(pending, present, strict=True) if not has]
        if sweep > 0 and len(missing) < len(pending):
            last_seen = time.monotonic()
        if sweep == 0:
            late = len(missing)
        if missing and time.monotonic() > deadline:
            raise FanoutTimeout(f"{len(missing)} followers lacked status {status['id']} after {PROBE_TIMEOUT_SECONDS} s")
        pending = missing
        sweep += 1
    return last_seen - acknowledged, late


async def _has_on_top(client: PublicClient, follower: DatasetAccount, status_id: str) -> bool:
    home = await client.expect("GET", "/api/v1/timelines/home", token=follower.token, params={"limit": "1"})
    return bool(home) and home[0]["id"] == status_id
