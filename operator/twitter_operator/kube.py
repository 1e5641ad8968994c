"""A small asynchronous Kubernetes API client for the children the operator manages.

kopf watches ``TwitterSystem`` resources with its own client, but it gives handlers no
client for other kinds. This one covers what the reconciler needs (get, list, create,
JSON merge patch, delete) over aiohttp. It uses the same :class:`kopf.ConnectionInfo`
that kopf logs in with. So the operator needs no second set of credentials, and neither
it nor its tests need the official ``kubernetes`` package, which reads ``KUBECONFIG``
at import.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

# How long one API call may take before the reconcile gives up and retries on the next pass.
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Kind:
    """One resource type: where its objects live in the API and what they are called."""

    api_version: str  # "v1" for the core group, else "group/version"
    kind: str
    plural: str

    def collection_path(self, namespace: str) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"

    def object_path(self, namespace: str, name: str, *, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


SECRET = Kind("v1", "Secret", "secrets")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
EVENT = Kind("v1", "Event", "events")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
STATEFUL_SET = Kind("apps/v1", "StatefulSet", "statefulsets")
HORIZONTAL_POD_AUTOSCALER = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
CRON_JOB = Kind("batch/v1", "CronJob", "cronjobs")
JOB = Kind("batch/v1", "Job", "jobs")
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")

KINDS_BY_NAME = {
    kind.kind: kind
    for kind in (
        SECRET, SERVICE, POD, EVENT, DEPLOYMENT, STATEFUL_SET,
        HORIZONTAL_POD_AUTOSCALER, CRON_JOB, JOB, NETWORK_POLICY,
    )
}


class KubeApiError(Exception):
    """A Kubernetes API call failed; ``status`` is the HTTP status, 0 if none arrived."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class UnauthorizedError(KubeApiError):
    """The credentials were rejected (HTTP 401)."""


class NotFoundError(KubeApiError):
    """The object does not exist (HTTP 404)."""


class ConflictError(KubeApiError):
    """The object already exists or changed under us (HTTP 409)."""


def kind_of(manifest: Mapping[str, Any]) -> Kind:
    try:
        return KINDS_BY_NAME[manifest["kind"]]
    except KeyError as error:
        raise KubeApiError(f"unsupported kind {manifest.get('kind')!r}: add it to KINDS_BY_NAME") from error


def _ssl_context(connection: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if connection.insecure:
        return False
    return connection.as_ssl_context()


class KubeClient:
    """Make namespaced API calls as the operator; use as ``async with KubeClient(connect)``.

    ``connect`` returns the current credentials; it is called again after an HTTP 401,
    because service account tokens are rotated while the operator runs.
    """

    def __init__(self, connect: Callable[[], kopf.ConnectionInfo]) -> None:
        self._connect = connect
        self._connection: kopf.ConnectionInfo | None = None
        self._session: aiohttp.ClientSession | None = None
        # Every write is counted, so tests and logs can tell an idle reconcile from a busy one.
        self.writes = 0

    async def __aenter__(self) -> KubeClient:
        self._open(self._connect())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    def _open(self, connection: kopf.ConnectionInfo) -> None:
        headers = {"Accept": "application/json", **connection.as_http_headers()}
        self._connection = connection
        self._session = aiohttp.ClientSession(
            base_url=connection.server.rstrip("/") + "/",
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=_ssl_context(connection)),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        )

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            return await self._send(method, path, json=json, params=params, content_type=content_type)
        except UnauthorizedError:
            # Rotated token: log in again once, then let a second 401 through.
            await self._close()
            self._open(self._connect())
            return await self._send(method, path, json=json, params=params, content_type=content_type)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str] | None,
        content_type: str,
    ) -> dict[str, Any]:
        if self._session is None:
            raise KubeApiError("the client is not open: use it as 'async with KubeClient(...)'")
        if method != "GET":
            self.writes += 1
        try:
            async with self._session.request(
                method,
                path.lstrip("/"),
                json=json,
                params=params,
                headers={"Content-Type": content_type} if json is not None else None,
            ) as response:
                if response.status == 401:
                    raise UnauthorizedError(f"{method} {path}: unauthorized", status=401)
                if response.status == 404:
                    raise NotFoundError(f"{method} {path}: not found", status=404)
                if response.status == 409:
                    raise ConflictError(f"{method} {path}: conflict", status=409)
                if response.status >= 400:
                    text = await response.text()
                    raise KubeApiError(f"{method} {path} failed with HTTP {response.status}: {text[:500]}",
                                       status=response.status)
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeApiError(f"{method} {path} failed: {error!r}") from error

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """Fetch one object, or ``None`` if it does not exist."""
        try:
            return await self._request("GET", kind.object_path(namespace, name))
        except NotFoundError:
            return None

    async def list(self, kind: Kind, namespace: str, *, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """List the objects carrying all of ``labels``.

        The selector also runs here, on the response: the operator deletes what it finds,
        so it must never act on an object that lacks its labels, whatever the server sent.
        """
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        answer = await self._request("GET", kind.collection_path(namespace), params={"labelSelector": selector})
        items = answer.get("items") or []
        return [item for item in items if _has_labels(item, labels)]

    async def list_all(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        """List every object of ``kind`` in ``namespace``, or in all namespaces for ``None``."""
        if namespace is None:
            prefix = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
            path = f"{prefix}/{kind.plural}"
        else:
            path = kind.collection_path(namespace)
        answer = await self._request("GET", path)
        return list(answer.get("items") or [])

    async def create(self, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return await self._request("POST", kind_of(manifest).collection_path(namespace), json=manifest)

    async def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386): maps merge, lists and scalars are replaced."""
        return await self._request(
            "PATCH",
            kind.object_path(namespace, name, subresource=subresource),
            json=patch,
            content_type="application/merge-patch+json",
        )

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete an object with background propagation; return False if it was already gone."""
        try:
            await self._request(
                "DELETE",
                kind.object_path(namespace, name),
                json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except NotFoundError:
            return False
        return True


def _has_labels(item: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    present = (item.get("metadata") or {}).get("labels") or {}
    return all(present.get(key) == value for key, value in labels.items())
