"""Faults: a service or a database that stops answering gives quick 503s, and service returns heal it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import PublicApi
from tests.support.postgres import PostgresServer
from tests.support.stack import Stack, allocate_ports, available_services, stack_settings
from twitter_shared.migrate import upgrade
from twitter_shared.settings import DATABASE_OWNERS, ServiceName


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def test_stopped_account_service_gives_503_then_recovers(api: PublicApi, stack: Stack) -> None:
    user = await api.register_user()
    await stack.stop(ServiceName.ACCOUNT)

    answers = [await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token) for _ in range(8)]
    ready = await api.call("GET", "/readyz")

    assert {answer.status for answer in answers} == {503}
    assert all(isinstance(answer.body["error"], str) for answer in answers)
    assert ready.status == 503
    assert ready.body["checks"]["account_service"] != "ok"

    await stack.start(ServiceName.ACCOUNT)
    # The circuit breaker lets a trial call through once its reset period (0.5 s in tests) has passed.
    for _ in range(50):
        answer = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)
        if answer.status == 200:
            break
        await asyncio.sleep(0.1)
    assert answer.status == 200


async def test_lost_database_gives_quick_503_and_recovers(own_postgres: PostgresServer, tmp_path: Path) -> None:
    urls = {}
    for owner in DATABASE_OWNERS:
        urls[owner] = own_postgres.create_database(str(owner))
        await upgrade(urls[owner], history=owner)
    ports = allocate_ports()
    stack = Stack(stack_settings(urls, ports), ports)
    try:
        for service in available_services():
            await stack.start(service)
        async with aiohttp.ClientSession() as session:
            api = PublicApi(session, stack.url())
            await api.register_app()
            user = await api.register_user()

            own_postgres.stop()
            during = await api.call("GET", "/api/v1/accounts/verify_credentials", token=user.token)
            async with session.get(stack.url(ServiceName.ACCOUNT) + "/readyz") as response:
                readiness = response.status, await response.json()

            own_postgres.start()
            after = await _eventually_ok(api, user.token)
    finally:
        await stack.close()

    assert during.status == 503
    assert "error" in during.body
    assert readiness[0] == 503
    assert readiness[1]["checks"]["database"] != "ok"
    assert after.status == 200


async def _eventually_ok(api: PublicApi, token: str):  # noqa: ANN202
    answer = None
    for _ in range(100):
        answer = await api.call("GET", "/api/v1/accounts/verify_credentials", token=token)
        if answer.status == 200:
            return answer
        await asyncio.sleep(0.1)
    return answer
