"""The internal HTTP client: service token, timeout, retries for idempotent calls, circuit breaker.

Every call carries the service token and the current request id. Only idempotent
calls (GET, PUT, DELETE, or a POST the caller marks idempotent) are retried, with
full-jitter exponential backoff. After ``breaker_failures`` consecutive failures the
breaker opens and calls fail at once with ``Unavailable`` until ``breaker_reset_seconds``
pass. Then one trial call decides whether it closes again. Background work (outbox
consumers, readiness probes) uses clients without a breaker: it has its own
backoff, and its failures while a neighbour starts must not fail user requests.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import structlog

from twitter_shared.errors import ServiceError, Unavailable, UpstreamError, error_for_status
from twitter_shared.internal_http import ConnectionPool, TransportError
from twitter_shared.web import REQUEST_ID_HEADER

log = structlog.get_logger()

SERVICE_TOKEN_HEADER = "X-Service-Token"
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 1.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class CircuitBreaker:
    def __init__(self, *, failures_to_open: int, reset_seconds: float) -> None:
        self.failures_to_open = failures_to_open
        self.reset_seconds = reset_seconds
        self.consecutive_failures = 0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        # Half-open: after the reset period one call goes through to probe the service.
        if time.monotonic() - self.opened_at >= self.reset_seconds:
            self.opened_at = time.monotonic()
            return True
        return False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None

    def record_failure(self) -> bool:
        """Count a failure; return True when this failure opened the breaker."""
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failures_to_open and self.opened_at is None:
            self.opened_at = time.monotonic()
            return True
        if self.opened_at is not None:
            self.opened_at = time.monotonic()
        return False


class InternalClient:
    """A client of one internal service, over a ``ConnectionPool`` that its creator closes."""

    def __init__(
        self,
        *,
        service: str,
        token: str,
        timeout_seconds: float,
        retries: int,
        breaker: CircuitBreaker | None,
        pool: ConnectionPool,
    ) -> None:
        self.service = service
        self.token = token
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.breaker = breaker
        self.pool = pool

    async def get(self, path: str, *, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, *, body: dict[str, Any] | None = None, idempotent: bool = False) -> Any:
        return await self.request("POST", path, body=body, idempotent=idempotent)

    async def delete(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return await self.request("DELETE", path, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = False,
        timeout_seconds: float | None = None,
    ) -> Any:
        may_retry = idempotent or method in IDEMPOTENT_METHODS
        attempts = 1 + (self.retries if may_retry else 0)
        for attempt in range(1, attempts + 1):
            if self.breaker is not None and not self.breaker.allow():
                raise Unavailable(f"The {self.service} service is unavailable, try again shortly")
            try:
                result = await self._send(
                    method, path, params=params, body=body, timeout_seconds=timeout_seconds, repeatable=may_retry
                )
            except (TransportError, TimeoutError, _TransientFailure) as error:
                if self.breaker is not None and self.breaker.record_failure():
                    log.warning("client.breaker_opened", target=self.service, reset_seconds=self.breaker.reset_seconds)
                # A timed-out call already spent the whole budget; retrying would multiply the wait.
                if attempt == attempts or isinstance(error, TimeoutError):
                    log.warning("client.call_failed", target=self.service, path=path, attempts=attempt, error=repr(error))
                    if isinstance(error, _TransientFailure):
                        raise error.error from None
                    raise Unavailable(f"The {self.service} service did not respond, try again shortly") from error
                delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
                log.info("client.retrying", target=self.service, path=path, attempt=attempt, delay_seconds=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            if self.breaker is not None:
                self.breaker.record_success()
            return result
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None,
        body: dict[str, Any] | None,
        timeout_seconds: float | None,
        repeatable: bool,
    ) -> Any:
        headers = {SERVICE_TOKEN_HEADER: self.token}
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        async with asyncio.timeout(timeout_seconds or self.timeout_seconds):
            response = await self.pool.request(
                method, self.pool.target(path, params), headers=headers, body=data, repeatable=repeatable
            )
        try:
            payload = orjson.loads(response.body) if response.body else None
        except orjson.JSONDecodeError as error:
            raise UpstreamError(f"The {self.service} service returned an unreadable response") from error
        if response.status == 503:
            raise _TransientFailure(Unavailable(f"The {self.service} service is unavailable, try again shortly"))
        if response.status >= 500:
            raise _TransientFailure(UpstreamError(f"The {self.service} service failed"))
        if response.status >= 400:
            # A 4xx is a definite response about this request, so pass it on and never retry it.
            raise error_for_status(response.status, payload)
        return payload


class _TransientFailure(Exception):
    """A 5xx response, which counts against the breaker and may be retried; ``error`` is raised at the end."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.message)
        self.error = error
