"""In-process service stacks for tests: the real app factories on real 127.0.0.1 ports.

Each service runs in its own aiohttp test server and talks to the others over
HTTP exactly as in production; a test can stop and start one of them to
simulate an outage.
"""

from __future__ import annotations

import importlib
import shutil
import uuid
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.postgres import PostgresServer, free_port
from twitter_shared.migrate import upgrade
from twitter_shared.settings import DATABASE_OWNERS, ServiceName, Settings

SERVICE_TOKEN = "test-service-token"
APP_MODULES = {
    ServiceName.ACCOUNT: "twitter_account.app",
    ServiceName.POST: "twitter_post.app",
    ServiceName.TIMELINE: "twitter_timeline.app",
    ServiceName.GATEWAY: "twitter_gateway.app",
}


def available_services() -> list[ServiceName]:
    """Services whose app module exists (all four once the code base is complete)."""
    found = []
    for service, module in APP_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        found.append(service)
    return found


class DatabaseTemplates:
    """Migrated template databases, made once per session and copied for each test (fast and isolated)."""

    def __init__(self, *, folder: Path, postgres: PostgresServer | None) -> None:
        self.folder = folder
        self.postgres = postgres
        self.ready = False

    async def prepare(self) -> None:
        if self.ready:
            return
        for owner in DATABASE_OWNERS:
            if self.postgres is None:
                url = f"sqlite+aiosqlite:///{self.folder / f'template-{owner}.db'}"
            else:
                url = self.postgres.create_database(f"template_{owner}")
            await upgrade(url, history=owner)
        self.ready = True

    async def fresh_urls(self, tmp_path: Path) -> dict[ServiceName, str]:
        await self.prepare()
        urls = {}
        for owner in DATABASE_OWNERS:
            if self.postgres is None:
                target = tmp_path / f"{owner}.db"
                shutil.copyfile(self.folder / f"template-{owner}.db", target)
                urls[owner] = f"sqlite+aiosqlite:///{target}"
            else:
                name = f"t_{owner}_{uuid.uuid4().hex[:12]}"
                self.postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "template_{owner}" STRATEGY FILE_COPY')
                urls[owner] = self.postgres.url(name)
        return urls


def stack_settings(database_urls: dict[ServiceName, str], ports: dict[ServiceName, int], **overrides: object) -> Settings:
    values: dict[str, object] = {
        "service_token": SERVICE_TOKEN,
        "account_database_url": database_urls[ServiceName.ACCOUNT],
        "post_database_url": database_urls[ServiceName.POST],
        "timeline_database_url": database_urls[ServiceName.TIMELINE],
        "account_url": f"http://127.0.0.1:{ports[ServiceName.ACCOUNT]}",
        "post_url": f"http://127.0.0.1:{ports[ServiceName.POST]}",
        "timeline_url": f"http://127.0.0.1:{ports[ServiceName.TIMELINE]}",
        "rate_limit_enabled": False,
        "outbox_poll_seconds": 0.05,
        "internal_retries": 1,
        "breaker_reset_seconds": 0.5,
        "token_cache_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


class Stack:
    """The running services of one test."""

    def __init__(self, settings: Settings, ports: dict[ServiceName, int]) -> None:
        self.settings = settings
        self.ports = ports
        self.servers: dict[ServiceName, TestServer] = {}

    def url(self, service: ServiceName = ServiceName.GATEWAY) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    async def start(self, service: ServiceName) -> web.Application:
        app = importlib.import_module(APP_MODULES[service]).create_app(self.settings)
        server = TestServer(app, host="127.0.0.1", port=self.ports[service])
        try:
            await server.start_server()
        except BaseException:
            # The app's start-up ran before the bind failed: close what it opened.
            await server.close()
            raise
        self.servers[service] = server
        return app

    async def stop(self, service: ServiceName) -> None:
        server = self.servers.pop(service)
        await server.close()

    def app(self, service: ServiceName) -> web.Application:
        return self.servers[service].app

    async def close(self) -> None:
        for service in reversed(list(self.servers)):
            await self.stop(service)


def allocate_ports() -> dict[ServiceName, int]:
    return {service: free_port() for service in ServiceName}
