"""Fixtures for the operator tests: the emulated API server and a client for test-side calls."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import kmock
import kopf
import pytest

from tests.operator.emulator import ClusterEmulator
from twitter_operator import kube
from twitter_operator.reconcile import Reconciler
from twitter_operator.runner import OperatorConfig, run_operator

NAMESPACE = "twitter"
SYSTEM_PATH = f"/apis/twittersystem.dev/v1alpha1/namespaces/{NAMESPACE}/twittersystems"
# Long enough for a loaded CI machine, short enough that a hung test fails within a minute.
WAIT_SECONDS = 20.0

BASE_SYSTEM: dict[str, Any] = {
    "apiVersion": "twittersystem.dev/v1alpha1",
    "kind": "TwitterSystem",
    "metadata": {"name": "social", "namespace": NAMESPACE},
    "spec": {
        "image": {"repository": "registry.example/twitter-system", "tag": "0.1.0"},
        "services": {"gateway": {"replicas": 2}, "account": {"replicas": 1},
                     "post": {"replicas": 1}, "timeline": {"replicas": 1}},
        "databases": {"account": {"postgres": {}}, "post": {"postgres": {}},
                      "timeline": {"secretRef": {"name": "timeline-database", "key": "url"}}},
        "restartOnFault": {"enabled": True, "unreadySeconds": 60, "maxReplacementsPerHour": 2},
        "backup": {"schedule": "15 */6 * * *", "keepLast": 9,
                   "destination": {"persistentVolumeClaim": {"claimName": "social-backups"}}},
    },
}


def system_manifest(**spec_changes: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(BASE_SYSTEM)
    manifest["spec"].update(spec_changes)
    return manifest


class Api:
    """The test's own calls to the emulated API server, as a user or kubectl would make them."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def create_system(self, manifest: dict[str, Any]) -> dict[str, Any]:
        async with self._session.post(SYSTEM_PATH, json=manifest) as response:
            assert response.status < 400, await response.text()
            return await response.json()

    async def patch_system(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        async with self._session.patch(f"{SYSTEM_PATH}/{name}", json=patch,
                                       headers={"Content-Type": "application/merge-patch+json"}) as response:
            assert response.status < 400, await response.text()
            return await response.json()

    async def delete_system(self, name: str) -> None:
        async with self._session.delete(f"{SYSTEM_PATH}/{name}") as response:
            assert response.status < 400, await response.text()

    async def get_system(self, name: str) -> dict[str, Any] | None:
        async with self._session.get(f"{SYSTEM_PATH}/{name}") as response:
            if response.status == 404:
                return None
            return await response.json()


@pytest.fixture
async def cluster() -> AsyncIterator[ClusterEmulator]:
    async with ClusterEmulator() as handler, kmock.Server(handler):
        yield handler


@pytest.fixture
def connect(cluster: ClusterEmulator) -> Callable[[], kopf.ConnectionInfo]:
    return lambda: kopf.ConnectionInfo(server=str(cluster.url).rstrip("/"))


@pytest.fixture
async def api(cluster: ClusterEmulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(base_url=str(cluster.url)) as session:
        yield Api(session)


@pytest.fixture
async def client(connect: Callable[[], kopf.ConnectionInfo]) -> AsyncIterator[kube.KubeClient]:
    async with kube.KubeClient(connect) as opened:
        yield opened


@pytest.fixture
def reconciler(client: kube.KubeClient) -> Reconciler:
    return Reconciler(client)


def writes(cluster: ClusterEmulator) -> list[str]:
    """List the create, patch and delete requests the emulated API server has received so far."""
    return [f"{request.method.value} {request.url.path}" for request in cluster
            if request.method.value in {"POST", "PATCH", "PUT", "DELETE"}]


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, what: str) -> None:
    """Wait until ``check`` is true, and fail with ``what`` (the awaited state) after WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_operator(connect: Callable[[], kopf.ConnectionInfo], *,
                           resync_seconds: float = 0.3,
                           liveness_endpoint: str | None = None) -> AsyncIterator[None]:
    """Run the whole operator as a task of the test body, and cancel it on exit.

    Cancelling is quicker than kopf's stop flag, which waits seconds for its watchers,
    and it has to happen in the test body: a fixture's teardown would be cancelled with it.
    """
    config = OperatorConfig(namespaces=(NAMESPACE,), resync_seconds=resync_seconds, retry_delay_seconds=1.0,
                            liveness_endpoint=liveness_endpoint)
    ready = asyncio.Event()
    task = asyncio.create_task(run_operator(config, connect=connect, ready_flag=ready))
    try:
        await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises why the operator stopped before it was ready
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
