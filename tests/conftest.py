"""Shared fixtures: databases on SQLite and on a real PostgreSQL server, and running service stacks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import PublicApi
from tests.support.postgres import PostgresServer, PostgresUnavailable, running_postgres
from tests.support.stack import DatabaseTemplates, Stack, allocate_ports, available_services, stack_settings
from twitter_shared.settings import ServiceName

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _postgres_or_skip() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of one test alone, so the test can stop and restart it."""
    with _postgres_or_skip() as server:
        yield server


@contextmanager
def _postgres_or_skip() -> Iterator[PostgresServer]:
    """Start a server, or skip the test without the server binaries, except in CI, where that fails it."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL tests need the server binaries: {error}")


@pytest.fixture(scope="session")
def _sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> DatabaseTemplates:
    return DatabaseTemplates(folder=tmp_path_factory.mktemp("templates"), postgres=None)


@pytest.fixture(scope="session")
def _postgres_templates(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> DatabaseTemplates:
    return DatabaseTemplates(folder=tmp_path_factory.mktemp("pg-templates"), postgres=postgres_server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def database_urls(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[ServiceName, str]:
    """Freshly migrated account, post and timeline databases on the test's back-end."""
    templates_fixture = "_sqlite_templates" if backend == "sqlite" else "_postgres_templates"
    templates: DatabaseTemplates = request.getfixturevalue(templates_fixture)
    return await templates.fresh_urls(tmp_path)


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    """Settings a test module wants different from the test defaults; override this fixture to change them."""
    return {}


@pytest.fixture
async def stack(database_urls: dict[ServiceName, str], stack_overrides: dict[str, object]) -> AsyncIterator[Stack]:
    """Every available service running on 127.0.0.1, the gateway last."""
    ports = allocate_ports()
    running = Stack(stack_settings(database_urls, ports, **stack_overrides), ports)
    try:
        for service in available_services():
            await running.start(service)
        yield running
    finally:
        await running.close()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[PublicApi]:
    """A public-API client pointed at the stack's gateway, with an app already registered."""
    async with aiohttp.ClientSession() as session:
        client = PublicApi(session, stack.url(ServiceName.GATEWAY))
        await client.register_app()
        yield client
