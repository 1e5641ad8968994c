"""Real account, post and timeline services for service-level tests, on SQLite or PostgreSQL.

Each service is built by its own app factory, migrated with the real Alembic
history and served by aiohttp's test server on 127.0.0.1, and the services
call each other over real HTTP with the service token. ``Cluster`` wraps the
internal APIs the tests drive. The fixtures here are imported by the
``conftest.py`` of the post and timeline test folders.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.postgres import PostgresServer
from twitter_account.app import create_app as create_account_app
from twitter_post.app import create_app as create_post_app
from twitter_shared.client import SERVICE_TOKEN_HEADER
from twitter_shared.migrate import upgrade
from twitter_shared.settings import Settings
from twitter_timeline.app import create_app as create_timeline_app

SERVICE_TOKEN = "service-token-for-tests"
BACKENDS = ("sqlite", "postgres")
# Fan-out in these tests takes milliseconds; this bound only stops a broken test from hanging.
SETTLE_TIMEOUT_SECONDS = 30.0
_unique = itertools.count(1)


class CallFailed(AssertionError):
    """An internal call returned a status the test did not expect."""


class ServiceClient:
    """Calls one service's internal API with the service token and checks the status."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        expect: int = 200,
        token: str | None = SERVICE_TOKEN,
    ) -> Any:
        headers = {SERVICE_TOKEN_HEADER: token} if token is not None else {}
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(method, self.base_url + path, params=clean, json=body, headers=headers) as response:
            payload = await response.json(content_type=None)
            if response.status != expect:
                raise CallFailed(f"{method} {path} answered {response.status}, expected {expect}: {payload}")
            return payload

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.call("POST", path, body=body if body is not None else {}, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.call("DELETE", path, **kwargs)


class Cluster:
    """The three services on one back-end, with helpers named after what the tests do."""

    def __init__(self, *, backend: str, urls: dict[str, str], folder: Path, postgres: PostgresServer | None, prefix: str) -> None:
        self.backend = backend
        self.urls = urls
        self.folder = folder
        self.postgres = postgres
        self.prefix = prefix
        self.servers: dict[str, TestServer] = {}
        self.session: aiohttp.ClientSession | None = None
        self.extra_timelines: list[TestServer] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": self.folder,
            "service_token": SERVICE_TOKEN,
            "account_database_url": self.urls["account"],
            "post_database_url": self.urls["post"],
            "timeline_database_url": self.urls["timeline"],
            "timeline_max_entries": 300,
            "log_level": "warning",
        }
        for name in ("account", "post", "timeline"):
            if name in self.servers:
                values[f"{name}_url"] = str(self.servers[name].make_url("")).rstrip("/")
        values.update(overrides)
        return Settings(**values)

    async def start(self) -> None:
        for history in ("account", "post", "timeline"):
            await upgrade(self.urls[history], history=history)
        self.session = aiohttp.ClientSession()
        await self._serve("account", create_account_app(self.settings()))
        await self._serve("post", create_post_app(self.settings()))
        await self.start_timeline()

    async def _serve(self, name: str, app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.servers[name] = server
        return server

    async def start_timeline(self) -> None:
        await self._serve("timeline", create_timeline_app(self.settings()))

    async def stop_timeline(self) -> None:
        await self.servers.pop("timeline").close()

    async def extra_timeline(self, *, cap: int) -> tuple[ServiceClient, str]:
        """Serve a second timeline service on a database of its own, with its own cap; return it and its URL."""
        url = await new_database(self.postgres, self.folder, f"{self.prefix}_timeline_{next(_unique)}")
        await upgrade(url, history="timeline")
        app = create_timeline_app(self.settings(timeline_database_url=url, timeline_max_entries=cap))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.extra_timelines.append(server)
        return ServiceClient(self.session, str(server.make_url("")).rstrip("/")), url

    async def close(self) -> None:
        for server in self.extra_timelines:
            await server.close()
        for name in ("timeline", "post", "account"):
            if name in self.servers:
                await self.servers.pop(name).close()
        if self.session is not None:
            await self.session.close()

    def client(self, name: str) -> ServiceClient:
        assert self.session is not None
        return ServiceClient(self.session, str(self.servers[name].make_url("")).rstrip("/"))

    @property
    def accounts(self) -> ServiceClient:
        return self.client("account")

    @property
    def posts(self) -> ServiceClient:
        return self.client("post")

    @property
    def timelines(self) -> ServiceClient:
        return self.client("timeline")

    # --- what tests do -----------------------------------------------------------------------

    async def new_account(self, name: str = "user") -> str:
        """Register an account with a unique username starting with ``name``; return its id."""
        username = f"{name}{next(_unique)}"[:30]
        fields = {"username": username, "email": f"{username}@example.org", "password": "password123", "agreement": "1"}
        registered = await self.accounts.post("/internal/accounts", {"fields": fields})
        return registered["account_id"]

    async def username(self, account_id: str) -> str:
        return (await self.accounts.get(f"/internal/accounts/{account_id}"))["username"]

    async def follow(self, follower_id: str, followee_id: str) -> None:
        await self.accounts.post(f"/internal/accounts/{follower_id}/follow", {"target_id": followee_id})

    async def unfollow(self, follower_id: str, followee_id: str) -> None:
        await self.accounts.post(f"/internal/accounts/{follower_id}/unfollow", {"target_id": followee_id})

    async def delete_account(self, account_id: str) -> None:
        await self.accounts.delete(f"/internal/accounts/{account_id}")

    async def post(self, account_id: str, text: str = "hello", **fields: Any) -> dict[str, Any]:
        answer = await self.posts.post("/internal/statuses", {"account_id": account_id, "status": text, **fields})
        return answer["status"]

    async def status(self, status_id: str, *, viewer_id: str | None = None, expect: int = 200) -> dict[str, Any]:
        return await self.posts.get(f"/internal/statuses/{status_id}", params={"viewer_id": viewer_id}, expect=expect)

    async def reblog(self, account_id: str, status_id: str, *, expect: int = 200) -> dict[str, Any]:
        return await self.posts.post(f"/internal/statuses/{status_id}/reblog", {"account_id": account_id}, expect=expect)

    async def delete_status(self, account_id: str, status_id: str, *, expect: int = 200) -> dict[str, Any]:
        return await self.posts.delete(f"/internal/statuses/{status_id}", params={"account_id": account_id}, expect=expect)

    async def home(self, owner_id: str, *, timelines: ServiceClient | None = None, **params: Any) -> list[str]:
        return await (timelines or self.timelines).get(f"/internal/timelines/{owner_id}", params=params)

    async def whole_home(self, owner_id: str, *, timelines: ServiceClient | None = None) -> list[str]:
        """Every entry of a home timeline, newest first, walked 40 at a time."""
        entries: list[str] = []
        max_id = None
        while page := await self.home(owner_id, timelines=timelines, limit=40, max_id=max_id):
            entries += page
            max_id = page[-1]
        return entries

    async def settled(self, *, timelines: ServiceClient | None = None) -> None:
        """Wait until the post service has applied every account event and the timeline every event."""
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_SECONDS
        account_head = (await self.accounts.get("/internal/events", params={"after": 1 << 62, "limit": 1}))["head"]
        while True:
            progress = await (timelines or self.timelines).get("/internal/progress")
            post_progress = await self.posts.get("/internal/progress")
            if progress["caught_up"] and post_progress["account"] >= account_head:
                # The post service may have emitted deletions while catching up: check once more.
                progress = await (timelines or self.timelines).get("/internal/progress")
                if progress["caught_up"]:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"events not applied within {SETTLE_TIMEOUT_SECONDS} s: {progress}")
            await asyncio.sleep(0.02)


async def new_database(postgres: PostgresServer | None, folder: Path, name: str) -> str:
    if postgres is None:
        return f"sqlite+aiosqlite:///{(folder / f'{name}.db').as_posix()}"
    return await asyncio.to_thread(postgres.create_database, name)


@pytest.fixture(scope="module", params=BACKENDS)
async def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    backend = request.param
    postgres = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    folder = tmp_path_factory.mktemp(f"{backend}-cluster")
    prefix = f"{request.module.__name__.rsplit('.', 1)[-1]}_{backend}"[:40]
    urls = {history: await new_database(postgres, folder, f"{prefix}_{history}") for history in ("account", "post", "timeline")}
    running = Cluster(backend=backend, urls=urls, folder=folder, postgres=postgres, prefix=prefix)
    try:
        await running.start()
        yield running
    finally:
        await running.close()
