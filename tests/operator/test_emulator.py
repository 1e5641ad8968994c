"""The test shim itself: the API server behaviour the other operator tests rely on."""

from __future__ import annotations

from tests.operator.conftest import NAMESPACE, Api, system_manifest
from tests.operator.emulator import ClusterEmulator

DEPLOYMENTS = "apps/v1/deployments"


def owned_deployment(name: str, owner_uid: str) -> dict:
    return {"metadata": {"name": name, "namespace": NAMESPACE,
                         "ownerReferences": [{"uid": owner_uid, "kind": "TwitterSystem", "name": "social"}]}}


async def test_create_assigns_identity(api: Api) -> None:
    first = await api.create_system(system_manifest())
    second = await api.create_system({**system_manifest(), "metadata": {"name": "other", "namespace": NAMESPACE}})

    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert first["metadata"]["creationTimestamp"].endswith("Z")


async def test_spec_change_bumps_generation(api: Api) -> None:
    await api.create_system(system_manifest())

    changed = await api.patch_system("social", {"spec": {"services": {"post": {"replicas": 2}}}})
    annotated = await api.patch_system("social", {"metadata": {"annotations": {"note": "x"}}})

    assert changed["metadata"]["generation"] == 2
    assert annotated["metadata"]["generation"] == 2
    assert int(annotated["metadata"]["resourceVersion"]) > int(changed["metadata"]["resourceVersion"])


async def test_list_carries_kind(cluster: ClusterEmulator, api: Api) -> None:
    await api.create_system(system_manifest())

    async with cluster.get(f"/apis/twittersystem.dev/v1alpha1/namespaces/{NAMESPACE}/twittersystems") as response:
        listing = await response.json()

    assert listing["kind"] == "TwitterSystemList"
    assert listing["apiVersion"] == "twittersystem.dev/v1alpha1"
    assert [item["metadata"]["name"] for item in listing["items"]] == ["social"]


async def test_delete_collects_dependents(cluster: ClusterEmulator, api: Api) -> None:
    owner = await api.create_system(system_manifest())
    async with cluster.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                            json=owned_deployment("social-post", owner["metadata"]["uid"])):
        pass
    async with cluster.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                            json={"metadata": {"name": "unrelated", "namespace": NAMESPACE}}):
        pass

    await api.delete_system("social")

    assert sorted(cluster.live(DEPLOYMENTS, NAMESPACE)) == ["unrelated"]


async def test_orphan_is_collected_at_creation(cluster: ClusterEmulator) -> None:
    async with cluster.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                            json=owned_deployment("late", "uid-of-a-deleted-owner")):
        pass

    assert cluster.live(DEPLOYMENTS, NAMESPACE) == {}
