"""A small HTTP/1.1 client transport for calls between our own services.

aiohttp's client spent about 80 µs of CPU per call on its request and response
objects, URL, timer and tracing machinery. This transport spends about 25 µs. Both
figures come from a loopback micro-benchmark against an aiohttp server (20,000 GETs,
16 at a time, aiohttp 3.14 on Python 3.11). A home read makes two or three internal
calls, so that difference was a fifth of the gateway's CPU. Internal calls need
little of what aiohttp's client does: the peer is one of our services, and responses
come with a Content-Length (or, from a streaming handler, chunked). So
``ConnectionPool`` writes the request itself and reads the response with a parser
of just what HTTP/1.1 needs here.

A connection is reused while the server keeps it alive. The server may close an idle
connection just as a request leaves on it. So a request that fails on a reused
connection before any byte of the response arrives is sent again on a new one, when
the caller says a repeat is safe.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import SplitResult, quote, urlencode, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Larger than any status line and headers our services send, so a longer head means a foreign peer.
MAX_HEAD_BYTES = 64 * 1024
# Larger than any internal response (the biggest are pages of at most a few thousand ids).
MAX_BODY_BYTES = 256 * 1024 * 1024
# aiohttp's server closes a keep-alive connection after 75 s idle (its keepalive_timeout default).
# Dropping ours well before that makes a race with its close rare.
IDLE_SECONDS = 15.0
# Characters left as they are in a path: RFC 3986's unreserved and sub-delimiters, ':', '@', '/' and '%'.
PATH_SAFE = "/%:@!$&'()*+,;=-._~"
NO_BODY_STATUSES = frozenset({204, 304})


class TransportError(Exception):
    """A failure below HTTP: no connection, a lost or closed connection, or an unreadable response."""


class _StaleConnection(TransportError):
    """A failure of a reused connection before any byte of the response arrived."""


class Response:
    """A response's status code and whole body."""

    __slots__ = ("status", "body")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class _ResponseReader:
    """Incremental parse of one HTTP/1.1 response from the bytes received so far."""

    def __init__(self, *, head_request: bool) -> None:
        self.head_request = head_request
        self.status = 0
        self.keep_alive = True
        self._body_start = -1
        self._length: int | None = None
        self._chunked = False

    def parse(self, buffer: bytearray, *, closed: bool) -> tuple[Response, int] | None:
        """Return the response and the number of bytes it took once ``buffer`` contains all of it."""
        if self._body_start < 0 and not self._read_head(buffer):
            return None
        start = self._body_start
        if self._length is not None:
            end = start + self._length
            return (Response(self.status, bytes(buffer[start:end])), end) if len(buffer) >= end else None
        if self._chunked:
            return self._read_chunks(buffer, start)
        if closed:
            return Response(self.status, bytes(buffer[start:])), len(buffer)
        if len(buffer) - start > MAX_BODY_BYTES:
            raise TransportError(f"The response body is larger than {MAX_BODY_BYTES} bytes")
        return None

    def _read_head(self, buffer: bytearray) -> bool:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise TransportError(f"The response head is larger than {MAX_HEAD_BYTES} bytes")
            return False
        lines = bytes(buffer[:end]).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise TransportError(f"Invalid HTTP status line {lines[0][:80]!r}")
        self.status = int(code)
        self.keep_alive = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, separator, value = line.partition(b":")
            if not separator:
                raise TransportError(f"Invalid HTTP header line {line[:80]!r}")
            self._header(name.strip().lower(), value.strip().lower())
        self._body_start = end + 4
        if self.head_request or self.status in NO_BODY_STATUSES or 100 <= self.status < 200:
            self._length, self._chunked = 0, False
        elif not self._chunked and self._length is None:
            self.keep_alive = False  # the body ends when the server closes the connection
        return True

    def _header(self, name: bytes, value: bytes) -> None:
        if name == b"content-length":
            if not value.isdigit() or int(value) > MAX_BODY_BYTES:
                raise TransportError(f"Invalid Content-Length {value[:40]!r}")
            self._length = int(value)
        elif name == b"transfer-encoding":
            self._chunked = value.endswith(b"chunked")
        elif name == b"connection":
            if b"close" in value:
                self.keep_alive = False
            elif b"keep-alive" in value:
                self.keep_alive = True

    def _read_chunks(self, buffer: bytearray, start: int) -> tuple[Response, int] | None:
        body = bytearray()
        position = start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise TransportError(f"Invalid chunk size {size_text[:20]!r}") from None
            if size == 0:
                # The last chunk, then trailer fields if any, then an empty line.
                end = buffer.find(b"\r\n\r\n", line_end)
                return (Response(self.status, bytes(body)), end + 4) if end >= 0 else None
            data_end = line_end + 2 + size
            if len(buffer) < data_end + 2:
                return None
            body += buffer[line_end + 2 : data_end]
            if len(body) > MAX_BODY_BYTES:
                raise TransportError(f"The response body is larger than {MAX_BODY_BYTES} bytes")
            position = data_end + 2


class _Connection(asyncio.Protocol):
    """One keep-alive connection, which carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = time.monotonic()
        self._buffer = bytearray()
        self._reader: _ResponseReader | None = None
        self._waiter: asyncio.Future[Response] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._advance(closed=False)

    def eof_received(self) -> bool:
        # The peer finished sending, so this connection carries no further request.
        self.closed = True
        self._advance(closed=True)
        return False

    def connection_lost(self, error: Exception | None) -> None:
        self.closed = True
        self._advance(closed=True)

    async def exchange(self, request: bytes, *, head_request: bool, reused: bool) -> tuple[Response, bool]:
        """Send ``request`` and return the response, and whether the connection may carry another."""
        assert self.transport is not None and self._waiter is None
        reader = _ResponseReader(head_request=head_request)
        self._reader = reader
        self._waiter = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self.reused = reused
        self.transport.write(request)
        try:
            response = await self._waiter
        finally:
            self._waiter = None
            self._reader = None
        return response, reader.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _advance(self, *, closed: bool) -> None:
        waiter, reader = self._waiter, self._reader
        if waiter is None or reader is None or waiter.done():
            return
        try:
            parsed = reader.parse(self._buffer, closed=closed)
        except TransportError as error:
            waiter.set_exception(error)
            return
        if parsed is not None:
            response, used = parsed
            if used != len(self._buffer):
                reader.keep_alive = False  # bytes past the response mean the connection is out of step
            waiter.set_result(response)
        elif closed:
            if not self._buffer and self.reused:
                waiter.set_exception(_StaleConnection("The connection closed before the response began"))
            else:
                waiter.set_exception(TransportError("The connection closed before the response was complete"))


def check_service_url(base_url: str) -> SplitResult:
    """Return the parts of a service's base URL, or raise a ``ValueError`` that says what is wrong with it."""
    parts = urlsplit(base_url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"service URL {base_url!r} must be an absolute http:// or https:// URL, such as http://post:8082")
    if parts.query or parts.fragment:
        raise ValueError(f"service URL {base_url!r} must not have a query or fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0  # urlsplit checks the port only when it is read
    if port == 0:
        raise ValueError(f"service URL {base_url!r} has an invalid port: use a number from 1 to 65535")
    return parts


class ConnectionPool:
    """Keep-alive connections to one base URL, at most ``max_connections`` open at once.

    Create it inside a running event loop and ``close()`` it when done, or use it as an async
    context manager.
    """

    def __init__(self, base_url: str, *, max_connections: int = 100) -> None:
        parts = check_service_url(base_url)
        self.host = parts.hostname or ""
        self.port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.path_prefix = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == DEFAULT_PORTS[parts.scheme]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if default_port else f"{host}:{self.port}"
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    def target(self, path: str, params: dict | list | None) -> str:
        """Return the request target: the base path, ``path`` percent-encoded where needed, and the query."""
        target = self.path_prefix + quote(path, safe=PATH_SAFE)
        # Commas stay unquoted because they separate id lists, and quoting them took quote()'s slow path.
        return f"{target}?{urlencode(params, safe=',')}" if params else target

    async def request(
        self, method: str, target: str, *, headers: dict[str, str], body: bytes | None, repeatable: bool
    ) -> Response:
        """Send one request and return its response. Raise ``TransportError`` when no response came.

        ``repeatable`` allows one more try on a new connection when a reused one turns out closed.
        """
        request = self._encode(method, target, headers, body)
        async with self._slots:
            connection = self._take_idle()
            try:
                return await self._exchange(connection, request, head_request=method == "HEAD")
            except _StaleConnection:
                if not repeatable:
                    raise
            return await self._exchange(None, request, head_request=method == "HEAD")

    async def __aenter__(self) -> ConnectionPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    async def _exchange(self, connection: _Connection | None, request: bytes, *, head_request: bool) -> Response:
        reused = connection is not None
        if connection is None:
            connection = await self._connect()
        try:
            response, keep_alive = await connection.exchange(request, head_request=head_request, reused=reused)
        except BaseException:
            # After a cancellation, a timeout or a failure mid-response, the connection's state is unknown.
            connection.close()
            raise
        if keep_alive and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return response

    def _take_idle(self) -> _Connection | None:
        oldest_kept = time.monotonic() - IDLE_SECONDS
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and connection.idle_since >= oldest_kept:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise TransportError("The connection pool is closed")
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl)
        except OSError as error:
            raise TransportError(f"Connection to {self.host}:{self.port} failed: {error}") from error
        return connection

    def _encode(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        for name, value in headers.items():
            # A line break in a value would let it start a header of its own.
            if "\r" in value or "\n" in value:
                raise ValueError(f"Header {name} contains a line break")
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head
