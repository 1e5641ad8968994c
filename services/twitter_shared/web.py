"""aiohttp building blocks every service uses: middleware, JSON responses, health and metrics.

``build_app`` wires the parts in the same order everywhere: request id and the
per-request log line outermost, then error mapping, so even an error response
carries its request id and shows up in the log with its status.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from twitter_shared.errors import BadRequest, ServiceError

log = structlog.get_logger()

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied request id is kept only if it is short and plain, so it is safe in logs.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
READINESS_TIMEOUT_SECONDS = 2.0
CLIENT_CLOSED_REQUEST = 499
NUL_MESSAGE = "Request contains a NUL character, which no field accepts"
MAX_BODY_DEPTH = 32
# Long polls and probes arrive many times a minute; their request lines go to debug, not info.
QUIET_ROUTES = frozenset({"/internal/events", "/healthz", "/readyz", "/metrics"})
# In an app whose request lines go to debug, a request this slow or failing with a 5xx still logs at info.
SLOW_REQUEST_SECONDS = 1.0
MAX_KEPT_LABEL_SETS = 1000

ReadinessCheck = Callable[[], Awaitable[None]]
SERVICE_NAME = web.AppKey("service_name", str)
READINESS_CHECKS = web.AppKey("readiness_checks", list)
METRICS = web.AppKey("metrics", "RequestMetrics")
QUIET_REQUEST_LOG = web.AppKey("quiet_request_log", bool)
# Exit codes a watchdog requests before it stops the process; ``serve`` returns the highest.
EXIT_CODE = web.AppKey("exit_code", list)


class RequestMetrics:
    """Prometheus metrics of one app, in a registry of its own so tests can run many apps."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "HTTP requests handled", ["method", "route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to handle an HTTP request", ["method", "route"], registry=self.registry
        )
        # ``labels()`` looks a child up under a lock on every call, so the children found are kept here.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.duration.labels(method, route))
            # Clients choose the method, so only a bounded number of label sets is kept.
            if len(self._children) < MAX_KEPT_LABEL_SETS:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


def error_response(error: ServiceError, *, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.body(), status=error.status, headers=headers)


def route_name(request: web.Request) -> str:
    """Return the route pattern (``/api/v1/accounts/{id}``), not the path, to keep label sets small."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Bind the request id, log one line per request and count it."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    # 32 random hex digits, like a UUID's hex, for a fifth of uuid4's cost.
    request_id = incoming if VALID_REQUEST_ID.match(incoming) else os.urandom(16).hex()
    route = route_name(request)
    structlog.contextvars.bind_contextvars(request_id=request_id, method=request.method, route=route)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        # The client went away or the server is stopping, so no response is sent; nginx logs this as 499.
        status = CLIENT_CLOSED_REQUEST
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app.get(METRICS)
        if metrics is not None and route not in {"/metrics", "/healthz"}:
            metrics.observe(request.method, route, status, elapsed)
        quiet = request.app[QUIET_REQUEST_LOG] or route in QUIET_ROUTES
        log_line = log.debug if quiet and status < 500 and elapsed < SLOW_REQUEST_SECONDS else log.info
        log_line("request.finished", status=status, duration_ms=round(elapsed * 1000, 2), path=request.path)
        structlog.contextvars.unbind_contextvars("request_id", "method", "route")


@web.middleware
async def error_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Turn every failure into a JSON error; only the unexpected ones are logged with a trace.

    A NUL character in the path or query string is rejected here, before any handler runs.
    """
    try:
        target = request.raw_path
        if "%00" in target or "\x00" in target:
            raise BadRequest(NUL_MESSAGE)
        return await handler(request)
    except ServiceError as error:
        return error_response(error)
    except web.HTTPException as http_error:
        # Router and body-size errors keep their status but get a JSON body like every other error.
        if http_error.status < 400:
            raise
        headers = {"Allow": http_error.headers["Allow"]} if "Allow" in http_error.headers else None
        return json_response({"error": http_error.reason}, status=http_error.status, headers=headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client disconnected, perhaps mid-body, so no response can be sent
    except Exception:
        log.exception("request.failed")
        return error_response(ServiceError())


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": request.app[SERVICE_NAME]})


async def readyz(request: web.Request) -> web.Response:
    """Run every readiness check concurrently, each under a short timeout, and report each one."""
    checks: list[tuple[str, ReadinessCheck]] = request.app[READINESS_CHECKS]
    results = await asyncio.gather(*(_run_check(check) for _, check in checks))
    report = {name: result for (name, _), result in zip(checks, results, strict=True)}
    ready = all(result == "ok" for result in results)
    return json_response({"ready": ready, "checks": report}, status=200 if ready else 503)


async def _run_check(check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await check()
    except TimeoutError:
        return "timed out"
    except Exception as error:  # noqa: BLE001 - a readiness probe reports every failure, it never raises
        return f"failed: {type(error).__name__}"
    return "ok"


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(*, service: str, client_max_size: int = 1024 * 1024, quiet_request_log: bool = False) -> web.Application:
    """Create an application with the shared middleware and the health and metrics routes.

    With ``quiet_request_log`` the per-request line goes to debug unless the request failed
    with a 5xx or was slow. Internal services use it: the gateway already logs each public
    request, and their own lines carry the same request id.
    """
    app = web.Application(
        middlewares=[request_context_middleware, error_middleware],
        client_max_size=client_max_size,
    )
    app[SERVICE_NAME] = service
    app[QUIET_REQUEST_LOG] = quiet_request_log
    app[READINESS_CHECKS] = []
    app[EXIT_CODE] = []
    app[METRICS] = RequestMetrics()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Read a JSON or form body into a dict; an empty body is an empty dict.

    Mastodon clients send forms (``a=1&b[]=x``) as often as JSON; both land here.
    Array fields (``key[]``) are collected into lists under the bare key.
    """
    if not request.can_read_body:
        return {}
    try:
        data = await _read_body(request)
    except (LookupError, HttpProcessingError, RequestPayloadError) as error:
        # An unknown charset, a body that does not match its Content-Encoding, or a broken multipart part.
        raise BadRequest("Request body cannot be decoded: check its charset, Content-Encoding and format") from error
    _check_body(data)
    return data


async def _read_body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise BadRequest("Request body is not valid JSON") from error
        if not isinstance(data, dict):
            raise BadRequest("Request body must be a JSON object")
        return data
    if request.content_type == "application/x-www-form-urlencoded":
        # Parsed here, strictly: aiohttp's form parser replaces invalid UTF-8 instead of refusing it.
        charset = request.charset or "utf-8"
        raw = await request.read()
        try:
            pairs = parse_qsl(raw.decode(charset).rstrip(), keep_blank_values=True, encoding=charset, errors="strict")
        except UnicodeDecodeError as error:
            raise BadRequest("Request body is not valid UTF-8") from error
        return collect_params(pairs)
    if request.content_type == "multipart/form-data":
        try:
            form = await request.post()
        except UnicodeDecodeError as error:
            raise BadRequest("Request body is not valid UTF-8") from error
        except ValueError as error:
            raise BadRequest("Request body is not a valid form") from error
        return collect_params(form.items())
    raw = await request.read()
    if raw.strip():
        raise BadRequest(f"Unsupported content type {request.content_type!r}: send JSON or a form")
    return {}


def _check_body(value: Any) -> None:
    """Reject a body with a NUL character or nested deeper than ``MAX_BODY_DEPTH``.

    PostgreSQL cannot store NUL in text, and no field of ours has a use for it. No request of
    ours nests deeply either, while orjson reads 1,024 levels but writes only 255, so a deep
    body passed on to another service failed there with a 500.
    """
    pending = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise BadRequest(f"Request body is nested more than {MAX_BODY_DEPTH} levels deep")
        if isinstance(current, str):
            if "\x00" in current:
                raise BadRequest(NUL_MESSAGE)
        elif isinstance(current, dict):
            pending.extend((key, depth + 1) for key in current)
            pending.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            pending.extend((item, depth + 1) for item in current)


def collect_params(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Fold form fields into a dict: ``key[]`` fields become lists, other repeated keys keep the last value."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(value, str):
            continue  # uploaded files: no endpoint of ours takes one
        if key.endswith("[]"):
            result.setdefault(key[:-2], []).append(value)
        else:
            result[key] = value
    return result
