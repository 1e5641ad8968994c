"""The internal HTTP transport against a real aiohttp server and against scripted raw servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from twitter_shared.internal_http import ConnectionPool, TransportError
from twitter_shared.settings import Settings

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "asyncio.Future[None] | object"]


class RawServer:
    """A TCP server that runs ``script`` for each connection and counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
    return head


def replying_to_each_request(*parts: bytes) -> Script:
    """A server that writes ``parts`` in turn, each flushed on its own, for every request on a connection."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for part in parts:
                writer.write(part)
                await writer.drain()

    return script


async def with_raw_server(script: Script, test: Callable[[ConnectionPool, RawServer], object]) -> None:
    server = RawServer(script)
    url = await server.start()
    pool = ConnectionPool(url)
    try:
        await test(pool, server)
    finally:
        await pool.close()
        await server.stop()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[TestServer, list[str]]]:
    """An aiohttp server that echoes each request's target, method and body, and records each peer port."""
    peers: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.read()
        return web.json_response({"target": request.raw_path, "method": request.method, "body": body.decode()})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"parts": ', b"[1, 2, ", b"3]}"):
            await response.write(part)
        await response.write_eof()
        return response

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/chunked", chunked)
    app.router.add_route("*", "/empty", no_content)
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, peers
    await server.close()


async def get_json(pool: ConnectionPool, path: str, params: dict | None = None) -> tuple[int, bytes]:
    response = await pool.request("GET", pool.target(path, params), headers={}, body=None, repeatable=True)
    return response.status, response.body


async def test_requests_reuse_one_connection(echo_server: tuple[TestServer, list[str]]) -> None:
    server, peers = echo_server
    async with ConnectionPool(str(server.make_url(""))) as pool:
        for _ in range(3):
            status, _ = await get_json(pool, "/a")
            assert status == 200
    assert len(peers) == 3
    assert len(set(peers)) == 1


async def test_target_encodes_path_and_query(echo_server: tuple[TestServer, list[str]]) -> None:
    server, _ = echo_server
    async with ConnectionPool(str(server.make_url("")) + "/prefix/") as pool:
        status, body = await get_json(pool, "/users/é a", {"ids": "1,2", "name": "x&y"})
    assert status == 200
    assert orjson.loads(body)["target"] == "/prefix/users/%C3%A9%20a?ids=1,2&name=x%26y"


async def test_post_sends_body_with_length(echo_server: tuple[TestServer, list[str]]) -> None:
    server, _ = echo_server
    async with ConnectionPool(str(server.make_url(""))) as pool:
        response = await pool.request(
            "POST", "/things", headers={"Content-Type": "application/json"}, body=b'{"a": 1}', repeatable=False
        )
    assert response.status == 200
    assert orjson.loads(response.body) == {"target": "/things", "method": "POST", "body": '{"a": 1}'}


async def test_chunked_response_is_joined(echo_server: tuple[TestServer, list[str]]) -> None:
    server, _ = echo_server
    async with ConnectionPool(str(server.make_url(""))) as pool:
        status, body = await get_json(pool, "/chunked")
        again, _ = await get_json(pool, "/after")
    assert status == 200
    assert body == b'{"parts": [1, 2, 3]}'
    assert again == 200


async def test_head_and_204_have_no_body(echo_server: tuple[TestServer, list[str]]) -> None:
    server, _ = echo_server
    async with ConnectionPool(str(server.make_url(""))) as pool:
        head = await pool.request("HEAD", "/a", headers={}, body=None, repeatable=True)
        empty = await pool.request("DELETE", "/empty", headers={}, body=None, repeatable=True)
        after, _ = await get_json(pool, "/a")
    assert (head.status, head.body) == (200, b"")
    assert (empty.status, empty.body) == (204, b"")
    assert after == 200


async def test_chunk_extensions_and_trailers_are_read() -> None:
    script = replying_to_each_request(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;note=x\r\n[1,\r\n",
        b"2\r\n2]\r\n0\r\nX-Checksum: 1\r\n\r\n",
    )

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        assert await get_json(pool, "/a") == (200, b"[1,2]")
        assert await get_json(pool, "/a") == (200, b"[1,2]")
        assert server.connections == 1

    await with_raw_server(script, test)


async def test_close_delimited_body_is_read_to_the_end() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1, 2")
        await writer.drain()
        writer.write(b", 3]")

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        first = await get_json(pool, "/a")
        second = await get_json(pool, "/a")
        assert first == (200, b"[1, 2, 3]")
        assert second == (200, b"[1, 2, 3]")
        assert server.connections == 2

    await with_raw_server(script, test)


async def test_connection_close_header_is_honoured() -> None:
    script = replying_to_each_request(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        assert await get_json(pool, "/a") == (200, b"{}")
        assert await get_json(pool, "/a") == (200, b"{}")
        assert server.connections == 2

    await with_raw_server(script, test)


def closes_after_one_response() -> Script:
    """A server that responds once per connection and then closes it without notice."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        # Reads the next request, then closes without a response, as on a keep-alive timeout race.
        await read_request(reader)

    return script


async def test_stale_connection_is_retried_when_repeatable() -> None:
    async def test(pool: ConnectionPool, server: RawServer) -> None:
        assert await get_json(pool, "/a") == (200, b"{}")
        assert await get_json(pool, "/a") == (200, b"{}")
        assert server.connections == 2

    await with_raw_server(closes_after_one_response(), test)


async def test_stale_connection_fails_unrepeatable_post() -> None:
    async def test(pool: ConnectionPool, server: RawServer) -> None:
        assert await get_json(pool, "/a") == (200, b"{}")
        with pytest.raises(TransportError, match="closed before the response began"):
            await pool.request("POST", "/a", headers={}, body=b"{}", repeatable=False)
        assert server.connections == 1

    await with_raw_server(closes_after_one_response(), test)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "closed before the response was complete"),
        (b"SPDY/3 200 OK\r\n\r\n", "Invalid HTTP status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "Invalid HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "Invalid HTTP header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "Invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 70_000, "head is larger than 65536 bytes"),
    ],
)
async def test_broken_response_is_a_transport_error(reply: bytes, message: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        with pytest.raises(TransportError, match=message):
            await get_json(pool, "/a")

    await with_raw_server(script, test)


async def test_extra_bytes_after_response_drop_the_connection() -> None:
    script = replying_to_each_request(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk")

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        assert await get_json(pool, "/a") == (200, b"{}")
        assert await get_json(pool, "/a") == (200, b"{}")
        assert server.connections == 2

    await with_raw_server(script, test)


async def test_timeout_discards_late_response() -> None:
    calls = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            body = b'"slow"' if calls == 1 else b'"fast"'
            if calls == 1:
                await asyncio.sleep(0.3)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    async def test(pool: ConnectionPool, server: RawServer) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await get_json(pool, "/a")
        assert await get_json(pool, "/a") == (200, b'"fast"')
        assert server.connections == 2

    await with_raw_server(script, test)


async def test_connections_are_capped() -> None:
    open_now = 0
    max_open = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, max_open
        open_now += 1
        max_open = max(max_open, open_now)
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(0.02)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        finally:
            open_now -= 1

    server = RawServer(script)
    url = await server.start()
    async with ConnectionPool(url, max_connections=2) as pool:
        results = await asyncio.gather(*(get_json(pool, "/a") for _ in range(6)))
    await server.stop()
    assert results == [(200, b"{}")] * 6
    assert max_open == 2


async def test_refused_connection_is_a_transport_error() -> None:
    server = RawServer(read_request)
    url = await server.start()
    await server.stop()
    async with ConnectionPool(url) as pool:
        with pytest.raises(TransportError, match="Connection to 127.0.0.1:[0-9]+ failed"):
            await get_json(pool, "/a")


async def test_line_break_in_header_is_rejected() -> None:
    async with ConnectionPool("http://127.0.0.1:9") as pool:
        with pytest.raises(ValueError, match="X-Request-ID contains a line break"):
            await pool.request("GET", "/a", headers={"X-Request-ID": "a\r\nX-Evil: 1"}, body=None, repeatable=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8081", "must be an absolute http"),
        ("post:8082", "must be an absolute http"),
        ("ftp://host", "must be an absolute http"),
        ("http://", "must be an absolute http"),
        ("http://host/?a=1", "must not have a query"),
        ("http://host/#top", "must not have a query"),
        ("http://host:abc", "invalid port"),
        ("http://host:99999", "invalid port"),
        ("http://host:0", "invalid port"),
    ],
)
async def test_invalid_base_url_is_rejected(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConnectionPool(url)


@pytest.mark.parametrize("name", ["account_url", "post_url", "timeline_url"])
def test_settings_reject_invalid_service_url(name: str) -> None:
    with pytest.raises(ValidationError, match=f"TWITTER_{name.upper()}: service URL 'post:8082' must be an absolute http"):
        Settings(**{name: "post:8082"})
