"""kmock's Kubernetes emulator with the API server behaviour the operator relies on.

kmock 0.8 stores objects as plain JSON: it assigns no ``uid``, ``resourceVersion``,
``generation`` or ``creationTimestamp``, its lists carry no ``kind``, and nothing
garbage-collects children when their owner goes. kopf needs the first three (it
tracks its own patches by ``resourceVersion``), the status needs ``generation``, and
the deletion tests need the garbage collector, so this subclass adds them:

- create: ``uid``, ``resourceVersion``, ``generation: 1``, ``creationTimestamp``;
- patch: a new ``resourceVersion``, and ``generation + 1`` when the spec changes
  outside the ``status`` subresource;
- list: ``kind`` and ``apiVersion``;
- delete: every object whose owner reference names the deleted ``uid`` is deleted
  too, recursively, as the garbage collector's background propagation does;
- create: an object whose owners are all gone already (a controller that raced
  with the deletion) is deleted at once, as the garbage collector does with
  dangling owner references.

It does not apply CRD defaults or validate against schemas; the chart tests check the
schema, and the operator applies the same defaults itself.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import uuid
from typing import Any

import attrs
import kmock
from kmock._internal import rendering

# Resources the operator reads or writes, with the kind its lists report. kopf waits for
# namespaces and CRDs to appear in discovery even when it is told not to scan them.
RESOURCES = {
    "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs={"get", "list", "watch"}),
    "apiextensions.k8s.io/v1/customresourcedefinitions": kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs={"get", "list", "watch"},
    ),
    "twittersystem.dev/v1alpha1/twittersystems": kmock.ResourceInfo(
        kind="TwitterSystem", singular="twittersystem", namespaced=True,
        verbs={"get", "list", "watch", "patch", "create", "delete"}, subresources={"status"},
    ),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True, verbs={"get", "list", "create", "delete"}),
    "v1/services": kmock.ResourceInfo(kind="Service", namespaced=True, verbs={"get", "list", "create", "patch"}),
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True, verbs={"get", "list", "delete"}),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True, verbs={"create", "list"}),
    "apps/v1/deployments": kmock.ResourceInfo(kind="Deployment", namespaced=True, verbs={"list", "create", "patch"}),
    "apps/v1/statefulsets": kmock.ResourceInfo(kind="StatefulSet", namespaced=True, verbs={"list", "create", "patch"}),
    "autoscaling/v2/horizontalpodautoscalers": kmock.ResourceInfo(
        kind="HorizontalPodAutoscaler", namespaced=True, verbs={"list", "create", "patch", "delete"},
    ),
    "batch/v1/cronjobs": kmock.ResourceInfo(kind="CronJob", namespaced=True, verbs={"list", "create", "patch"}),
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, verbs={"list"}),
    "networking.k8s.io/v1/networkpolicies": kmock.ResourceInfo(
        kind="NetworkPolicy", namespaced=True, verbs={"list", "create", "patch", "delete"},
    ),
}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    """A kmock emulator that behaves like an API server in the ways listed in the module docstring."""

    _versions: Any = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, info in RESOURCES.items():
            self.resources[key] = info

    def next_version(self) -> str:
        return str(next(self._versions))

    async def _handle(self, request: rendering.Request) -> Any:
        deleted_uid = None
        if request.resource is not None and isinstance(request.data, dict):
            if request.action == kmock.action.CREATE:
                metadata = request.data.setdefault("metadata", {})
                metadata.setdefault("namespace", request.namespace)
                metadata["uid"] = str(uuid.uuid4())
                metadata["resourceVersion"] = self.next_version()
                metadata["generation"] = 1
                metadata["creationTimestamp"] = _now()
            elif request.action == kmock.action.UPDATE:
                self._stamp_update(request)
        if request.action == kmock.action.DELETE and request.resource is not None:
            deleted_uid = self._uid_of(request.resource, request.namespace, request.name)

        response = await super()._handle(request)

        if deleted_uid is not None:
            await self._collect_garbage(deleted_uid)
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            await self._collect_orphan(request.resource, request.data)
        return response

    async def _collect_orphan(self, resource: Any, created: dict[str, Any]) -> None:
        references = (created.get("metadata") or {}).get("ownerReferences") or []
        if not references:
            return
        live_uids = {(obj.raw.get("metadata") or {}).get("uid") for obj in self.objects.values() if not obj.deleted}
        if any(reference.get("uid") in live_uids for reference in references):
            return
        metadata = created["metadata"]
        orphan = self.objects[resource, metadata.get("namespace"), metadata["name"]]
        raw = copy.deepcopy(orphan.raw)
        orphan.delete()
        await self._buses[resource].put({"type": "DELETED", "object": raw})

    def _stamp_update(self, request: rendering.Request) -> None:
        metadata = request.data.setdefault("metadata", {})
        metadata["resourceVersion"] = self.next_version()
        if request.subresource == "status" or "spec" not in request.data:
            return
        current = self._find(request.resource, request.namespace, request.name)
        if current is None:
            return
        if current.get("spec") != request.data["spec"]:
            metadata["generation"] = int((current.get("metadata") or {}).get("generation") or 0) + 1

    def _find(self, resource: Any, namespace: str | None, name: str | None) -> dict[str, Any] | None:
        for (key_resource, key_namespace, key_name), obj in self.objects.items():
            if key_resource == resource and key_namespace == namespace and key_name == name and not obj.deleted:
                return obj.raw
        return None

    def _uid_of(self, resource: Any, namespace: str | None, name: str | None) -> str | None:
        found = self._find(resource, namespace, name)
        return None if found is None else (found.get("metadata") or {}).get("uid")

    async def _collect_garbage(self, owner_uid: str) -> None:
        dependents = []
        for (resource, _namespace, _name), obj in list(self.objects.items()):
            if obj.deleted:
                continue
            references = (obj.raw.get("metadata") or {}).get("ownerReferences") or []
            if any(reference.get("uid") == owner_uid for reference in references):
                dependents.append((resource, obj))
        for resource, obj in dependents:
            raw = copy.deepcopy(obj.raw)
            obj.delete()
            await self._buses[resource].put({"type": "DELETED", "object": raw})
            uid = (raw.get("metadata") or {}).get("uid")
            if uid:
                await self._collect_garbage(uid)

    async def _serve_list(self, request: rendering.Request) -> Any:
        answer = await super()._serve_list(request)
        resource = request.resource
        for key, info in RESOURCES.items():
            if kmock.resource(key) == resource:
                answer["kind"] = f"{info.kind}List"
                answer["apiVersion"] = key.rsplit("/", 1)[0]
        answer["metadata"] = {"resourceVersion": self.next_version()}
        return answer

    def live(self, resource: str, namespace: str) -> dict[str, dict[str, Any]]:
        """Return the objects of ``resource`` that exist now in ``namespace``, by name."""
        selected = kmock.resource(resource)
        return {
            name: obj.raw
            for (key_resource, key_namespace, name), obj in self.objects.items()
            if key_resource == selected and key_namespace == namespace and not obj.deleted
        }
