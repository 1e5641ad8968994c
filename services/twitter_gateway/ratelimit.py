"""Fixed-window rate limits with Mastodon's ``X-RateLimit-*`` headers.

Counters live in the gateway process, so with several gateway replicas each one
counts on its own and a client may get up to replicas x the limit. Mastodon
resets its windows on period boundaries; so do we, which makes ``Reset`` the same
for every client in a window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

MAX_TRACKED_KEYS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        reset = datetime.fromtimestamp(self.reset_at, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset,
        }


class RateLimiter:
    def __init__(self, *, limit: int, period_seconds: int) -> None:
        self.limit = limit
        self.period_seconds = period_seconds
        self._window_start = 0.0
        self._counts: dict[str, int] = {}

    def hit(self, key: str, *, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window_start = now - (now % self.period_seconds)
        if window_start != self._window_start:
            self._window_start = window_start
            self._counts = {}
        if len(self._counts) >= MAX_TRACKED_KEYS and key not in self._counts:
            # Too many distinct clients in one window: forget them rather than grow without bound.
            self._counts = {}
        used = self._counts.get(key, 0) + 1
        self._counts[key] = used
        return Decision(
            allowed=used <= self.limit,
            limit=self.limit,
            remaining=max(self.limit - used, 0),
            reset_at=window_start + self.period_seconds,
        )


API_LIMITER = web.AppKey("api_limiter", RateLimiter)
REGISTRATION_LIMITER = web.AppKey("registration_limiter", RateLimiter)
