"""The whole operator (kopf, its handlers and the resync loop) against the emulated API server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import kopf

from tests.operator.conftest import NAMESPACE, Api, eventually, running_operator, system_manifest, writes
from tests.operator.emulator import ClusterEmulator
from tests.operator.test_reconcile import (
    CHILD_RESOURCES,
    CRON_JOBS,
    DEPLOYMENTS,
    PODS,
    ago,
    events_with_reason,
    mark_workloads_ready,
    service_pod,
)

Connect = Callable[[], kopf.ConnectionInfo]


async def status_condition(api: Api, condition_type: str) -> dict[str, str] | None:
    system = await api.get_system("social")
    if system is None:
        return None
    for item in (system.get("status") or {}).get("conditions") or []:
        if item["type"] == condition_type:
            return item
    return None


async def test_create_reconciles_children_and_status(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect):
        await api.create_system(system_manifest())
        await eventually(lambda: status_condition(api, "Ready"), what="a Ready condition")

        system = await api.get_system("social")
        assert system is not None
        assert system["status"]["observedGeneration"] == 1
        assert sorted(cluster.live(DEPLOYMENTS, NAMESPACE)) == [
            "social-account", "social-gateway", "social-post", "social-timeline"]
        assert cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]["spec"]["schedule"] == "15 */6 * * *"
        # Neither kopf nor the operator may block deletion.
        assert not system["metadata"].get("finalizers")


async def test_replica_change_scales(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect, resync_seconds=60):
        await api.create_system(system_manifest())
        await eventually(lambda: "social-post" in cluster.live(DEPLOYMENTS, NAMESPACE), what="the post Deployment")

        await api.patch_system("social", {"spec": {"services": {"post": {"replicas": 5}}}})

        # The resync loop sleeps for a minute here, so kopf's update handler does the scaling.
        await eventually(lambda: cluster.live(DEPLOYMENTS, NAMESPACE)["social-post"]["spec"]["replicas"] == 5,
                         what="the post Deployment scaled to 5")
        system = await api.get_system("social")
        await eventually(lambda: _observed_generation(api, 2), what="observedGeneration 2")
        assert system is not None


async def kopf_has_handled(api: Api) -> bool:
    """Tell whether kopf has recorded the current spec as handled, its own one write per change."""
    system = await api.get_system("social")
    annotations = ((system or {}).get("metadata") or {}).get("annotations") or {}
    return "kopf.zalando.org/last-handled-configuration" in annotations


async def _observed_generation(api: Api, generation: int) -> bool:
    system = await api.get_system("social")
    return system is not None and (system.get("status") or {}).get("observedGeneration") == generation


async def test_settled_system_gets_no_writes(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect, resync_seconds=0.2):
        await api.create_system(system_manifest())
        await eventually(lambda: status_condition(api, "Ready"), what="a Ready condition")
        mark_workloads_ready(cluster)

        async def ready() -> bool:
            found = await status_condition(api, "Ready")
            return found is not None and found["status"] == "True"

        await eventually(ready, what="Ready=True once the workloads report ready")
        await eventually(lambda: kopf_has_handled(api), what="kopf's record of the handled spec")

        before = writes(cluster)
        # Several resync passes run meanwhile; every one of them must find nothing to change.
        reads_before = len(list(cluster))
        await eventually(lambda: len(list(cluster)) > reads_before + 60, what="several resync passes")
        assert writes(cluster)[len(before):] == []


async def test_unready_pod_is_replaced(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect):
        await api.create_system(system_manifest())
        await eventually(lambda: status_condition(api, "Ready"), what="a Ready condition")
        cluster.objects[PODS, NAMESPACE, "social-post-stuck"] = service_pod(
            "social-post-stuck", ready=False, since=ago(minutes=10))

        await eventually(lambda: cluster.live(PODS, NAMESPACE) == {}, what="the unready pod deleted")
        await eventually(lambda: len(events_with_reason(cluster, "PodReplaced")) == 1, what="a PodReplaced Event")


async def test_invalid_cron_degrades(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect):
        await api.create_system(system_manifest(backup={"schedule": "*/5 * * *"}))

        async def degraded() -> bool:
            found = await status_condition(api, "Degraded")
            return found is not None and found["status"] == "True" and found["reason"] == "InvalidSpec"

        await eventually(degraded, what="Degraded=True with reason InvalidSpec")
        await eventually(lambda: kopf_has_handled(api), what="kopf's record of the handled spec")
        before = writes(cluster)
        reads_before = len(list(cluster))
        await eventually(lambda: len(list(cluster)) > reads_before + 10, what="more resync passes")

        assert writes(cluster)[len(before):] == []
        assert len(events_with_reason(cluster, "InvalidSpec")) == 1
        assert cluster.live(DEPLOYMENTS, NAMESPACE) == {}


async def test_delete_leaves_nothing(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect):
        await api.create_system(system_manifest())
        await eventually(lambda: status_condition(api, "Ready"), what="a Ready condition")

        await api.delete_system("social")

        # No finalizer: the resource is gone at once, and the children with it.
        assert await api.get_system("social") is None
        for resource in CHILD_RESOURCES:
            assert cluster.live(resource, NAMESPACE) == {}, resource
        # Later passes must not bring anything back.
        reads_before = len(list(cluster))
        await eventually(lambda: len(list(cluster)) > reads_before + 3, what="more resync passes")
        await asyncio.sleep(0)
        for resource in CHILD_RESOURCES:
            assert cluster.live(resource, NAMESPACE) == {}, resource


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_liveness_endpoint_answers(connect: Connect) -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"

    async with running_operator(connect, liveness_endpoint=url), aiohttp.ClientSession() as session:
        async def healthy() -> bool:
            try:
                async with session.get(url) as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(healthy, what="HTTP 200 from the liveness endpoint")


async def test_restart_writes_nothing(cluster: ClusterEmulator, api: Api, connect: Connect) -> None:
    async with running_operator(connect, resync_seconds=0.2):
        await api.create_system(system_manifest())
        await eventually(lambda: status_condition(api, "Ready"), what="a Ready condition")
        mark_workloads_ready(cluster)
        await eventually(lambda: kopf_has_handled(api), what="kopf's record of the handled spec")

        async def ready() -> bool:
            found = await status_condition(api, "Ready")
            return found is not None and found["status"] == "True"

        await eventually(ready, what="Ready=True once the workloads report ready")

    before = writes(cluster)
    # A new operator resumes the resource: kopf's resume handler and the resync loop both run.
    async with running_operator(connect, resync_seconds=0.2):
        reads_before = len(list(cluster))
        await eventually(lambda: len(list(cluster)) > reads_before + 60, what="several resync passes")

    assert writes(cluster)[len(before):] == []


async def test_module_command_reconciles(cluster: ClusterEmulator, api: Api, tmp_path: Path) -> None:
    """``python -m twitter_operator``, the image's command, logs in from a kubeconfig and works."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": str(cluster.url).rstrip("/")}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
    }))
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    environment = {**os.environ, "KUBECONFIG": str(kubeconfig), "TWITTER_OPERATOR_NAMESPACES": NAMESPACE,
                   "TWITTER_OPERATOR_RESYNC_SECONDS": "0.5", "TWITTER_OPERATOR_LIVENESS_ENDPOINT": liveness}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twitter_operator", env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await api.create_system(system_manifest())
        await eventually(lambda: "social-gateway" in cluster.live(DEPLOYMENTS, NAMESPACE),
                         what="the gateway Deployment, created by the operator process")
    finally:
        process.terminate()
        output, _ = await process.communicate()

    authorizations = {request.headers.get("Authorization") for request in cluster
                      if request.method.value == "POST" and "/deployments" in request.url.path}
    assert authorizations == {"Bearer test-token"}
    # Every line, kopf's included, is JSON.
    records = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    created = {(record.get("kind"), record.get("name")) for record in records if record.get("event") == "child.created"}
    assert ("Deployment", "social-gateway") in created
