"""A bulk client of the public API for the loader, the checker and the benchmarks.

It bounds the number of requests in flight and retries connection failures and
502/503/504, which is safe because every call the loader makes is idempotent by
design (see ``loader``). It stops at the first 429 instead of sleeping through a
rate-limit window. It keeps the dataset accounts' tokens in a file, so a second
run or the checker need not log in 962 times (each login costs the server an
argon2 hash).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from twitter_tools._dataset import Credentials

log = structlog.get_logger()

RETRIED_STATUSES = {502, 503, 504}
MAX_ATTEMPTS = 4
FIRST_BACKOFF_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 30
PROGRESS_INTERVAL_SECONDS = 2.0
SCOPES = "read write follow"

RATE_LIMIT_ADVICE = (
    "bulk loading needs the rate limits off: stop the system and start it again with "
    "`TWITTER_RATE_LIMIT_ENABLED=false make run` (or raise TWITTER_RATE_LIMIT_REQUESTS and "
    "TWITTER_REGISTRATION_LIMIT), then run the command again; it resumes where it stopped"
)


class ClientError(Exception):
    """A public-API call failed in a way the caller cannot continue from."""


class Unreachable(ClientError):
    """No response from the system, or only server errors, after every retry."""


class RateLimited(ClientError):
    """The system responded 429 because its rate limits are on."""


class UnexpectedAnswer(ClientError):
    def __init__(self, method: str, path: str, answer: Answer) -> None:
        super().__init__(f"{method} {path} failed with {answer.status}: {answer.body!r}")
        self.answer = answer


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def error(self) -> str:
        return self.body.get("error", "") if isinstance(self.body, dict) else str(self.body)


class PublicClient:
    """Requests to one system's public API, at most ``concurrency`` at a time."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, concurrency: int) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.requests_sent = 0

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request, retrying failures that may be transient; return any response but 429 and 5xx."""
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token}"
        last_failure = "no attempt"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = await self._send(method, path, data=data, params=params, headers=request_headers)
            except (aiohttp.ClientError, TimeoutError) as error:
                last_failure = repr(error)
            else:
                if answer.status == 429:
                    raise RateLimited(f"{method} {path} was rejected with 429 ({answer.error}): {RATE_LIMIT_ADVICE}")
                if answer.status not in RETRIED_STATUSES:
                    return answer
                last_failure = f"{answer.status} {answer.error}"
            if attempt < MAX_ATTEMPTS:
                pause = FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                log.warning("client.retrying", method=method, path=path, failure=last_failure, retry_in_seconds=round(pause, 2))
                await asyncio.sleep(pause)
        raise Unreachable(f"{method} {self.base_url}{path} failed {MAX_ATTEMPTS} times, last: {last_failure}")

    async def _send(
        self, method: str, path: str, *, data: dict[str, str] | None, params: dict[str, str] | None, headers: dict[str, str]
    ) -> Answer:
        async with self.slots:
            self.requests_sent += 1
            async with self.session.request(
                method, self.base_url + path, data=data, params=params, headers=headers
            ) as response:
                raw = await response.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(response.status, body)

    async def expect(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request that must succeed with 200; return its body."""
        answer = await self.call(method, path, **kwargs)
        if answer.status != 200:
            raise UnexpectedAnswer(method, path, answer)
        return answer.body

    async def register_app(self, name: str) -> tuple[str, str, str]:
        """Register a client application; return its id, secret and an app token."""
        app = await self.expect(
            "POST", "/api/v1/apps", data={"client_name": name, "scopes": SCOPES, "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
        grant = await self.expect(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "scope": SCOPES,
            },
        )
        return app["client_id"], app["client_secret"], grant["access_token"]

    async def log_in(self, app: tuple[str, str, str], login: Credentials) -> Answer:
        """Request a user token with the password grant; return the response, 200 or an error."""
        client_id, client_secret, _ = app
        return await self.call(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": client_secret,
                "username": login.username,
                "password": login.password,
                "scope": SCOPES,
            },
        )

    async def paged(self, path: str, *, token: str | None = None, limit: int) -> list[dict[str, Any]]:
        """Read every page of a list endpoint, newest first, following ``max_id`` until an empty page."""
        items: list[dict[str, Any]] = []
        params = {"limit": str(limit)}
        while True:
            page = await self.expect("GET", path, token=token, params=params)
            if not page:
                return items
            items.extend(page)
            if len(page) < limit:
                return items
            params = {"limit": str(limit), "max_id": str(page[-1]["id"])}


def client_session(*, concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS))


class TokenFile:
    """Dataset accounts' tokens per base URL, in a JSON file only its owner can read."""

    def __init__(self, path: Path | None, base_url: str) -> None:
        self.path = path
        self.base_url = base_url.rstrip("/")
        self._all: dict[str, dict[str, str]] = {}
        if path is not None and path.is_file():
            try:
                self._all = json.loads(path.read_text())
            except (OSError, ValueError):
                log.warning("tokens.unreadable", path=str(path), action="logging in again")
        self.tokens: dict[str, str] = dict(self._all.get(self.base_url, {}))

    def save(self) -> None:
        if self.path is None:
            return
        self._all[self.base_url] = self.tokens
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self._all, handle)
        partial.replace(self.path)


class Progress:
    """Periodic ``<command>.progress`` events for one phase: done, total and rate."""

    def __init__(self, event: str, phase: str, total: int) -> None:
        self.event = event
        self.phase = phase
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._last_report = self.started

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_INTERVAL_SECONDS or self.done == self.total:
            self._last_report = now
            log.info(self.event, phase=self.phase, done=self.done, total=self.total, per_second=round(self.rate(), 1))

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

