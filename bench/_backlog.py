"""The timeline service's backlog: events acknowledged by the other services but not yet applied.

Posts are acknowledged before they are fanned out, so a write workload can leave the
timeline service behind. The benchmark waits for it to catch up before each workload,
so no workload pays for the one before it, and reports how far behind it was and how
long it took to catch up. It reads the timeline service's internal progress endpoint
with the system's service token.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

from tests.support.system import RunningSystem
from twitter_shared.client import SERVICE_TOKEN_HEADER

POLL_SECONDS = 0.2
DRAIN_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Drain:
    events_behind: int
    seconds: float


def _progress(system: RunningSystem) -> dict:
    request = urllib.request.Request(
        system.env["TWITTER_TIMELINE_URL"] + "/internal/progress",
        headers={SERVICE_TOKEN_HEADER: (system.data_dir / "service-token").read_text().strip()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for_timelines(system: RunningSystem) -> Drain:
    """Wait until the timeline service has applied every event, and return how far behind it was."""
    started = time.monotonic()
    behind: int | None = None
    while True:
        progress = _progress(system)
        waiting = (progress["post_head"] - progress["post"]) + (progress["account_head"] - progress["account"])
        behind = waiting if behind is None else behind
        if progress["caught_up"]:
            return Drain(events_behind=behind, seconds=time.monotonic() - started)
        if time.monotonic() - started > DRAIN_TIMEOUT_SECONDS:
            raise TimeoutError(f"the timeline service was still {waiting} events behind after {DRAIN_TIMEOUT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)
