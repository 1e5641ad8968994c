"""Wire the reconciler into kopf and run the operator.

kopf watches ``TwitterSystem`` resources and calls the reconcile on create, resume and
spec change. The periodic pass is the operator's own resync loop rather than a kopf
timer, because kopf puts a finalizer on every resource that has a timer or daemon, and
a finalizer blocks deletion whenever the operator is down. With no finalizer, deleting
a ``TwitterSystem`` never waits for the operator: the garbage collector removes the
children through their owner references.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import kopf
import structlog

from twitter_operator import kube, manifests
from twitter_operator.reconcile import TWITTER_SYSTEM, ReconcileError, Reconciler

log = structlog.get_logger("twitter_operator.runner")


class ConfigurationError(Exception):
    """The operator's own settings are invalid or no cluster credentials were found."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    """Settings of the operator itself, read from ``TWITTER_OPERATOR_*`` variables by :meth:`from_environment`."""

    # Namespaces to watch; empty means every namespace (which needs a ClusterRole).
    namespaces: tuple[str, ...] = ()
    # Seconds between periodic passes over every resource; the restart-on-fault check runs on them.
    resync_seconds: float = 30.0
    # Delay before kopf retries a handler whose pass failed on an API error.
    retry_delay_seconds: float = 30.0
    # "http://0.0.0.0:8080/healthz" in the image; None turns the endpoint off.
    liveness_endpoint: str | None = None

    @classmethod
    def from_environment(cls, environ: os._Environ[str] | dict[str, str] = os.environ) -> OperatorConfig:
        namespaces = tuple(part.strip() for part in environ.get("TWITTER_OPERATOR_NAMESPACES", "").split(",")
                           if part.strip())
        try:
            resync = float(environ.get("TWITTER_OPERATOR_RESYNC_SECONDS", "30"))
        except ValueError as error:
            raise ConfigurationError("TWITTER_OPERATOR_RESYNC_SECONDS must be a number of seconds") from error
        if resync <= 0:
            raise ConfigurationError("TWITTER_OPERATOR_RESYNC_SECONDS must be above 0")
        return cls(
            namespaces=namespaces,
            resync_seconds=resync,
            liveness_endpoint=environ.get("TWITTER_OPERATOR_LIVENESS_ENDPOINT", "http://0.0.0.0:8080/healthz") or None,
        )


def discover_connection() -> kopf.ConnectionInfo:
    """Find credentials: the pod's service account in a cluster, else the kubeconfig."""
    settings = kopf.OperatorSettings()
    connection = (kopf.login_with_service_account(settings=settings)
                  or kopf.login_with_kubeconfig(settings=settings))
    if connection is None:
        raise ConfigurationError("no credentials: run in a pod with a service account, or set KUBECONFIG")
    return connection


def build_registry(*, reconciler: Reconciler, connect: Callable[[], kopf.ConnectionInfo],
                   config: OperatorConfig) -> kopf.OperatorRegistry:
    """Register the operator's handlers in a fresh registry, so tests and ``main`` share them."""
    registry = kopf.OperatorRegistry()
    resource = dict(group=manifests.API_GROUP, version="v1alpha1", plural=manifests.PLURAL)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf posts Events for every handler that succeeds; keep only its warnings and errors.
        settings.posting.level = logging.WARNING
        settings.peering.standalone = True
        # Listing namespaces and CRDs needs cluster-wide rights that the operator does not have.
        # It needs neither, because its namespaces are named and the chart installs its one CRD.
        settings.scanning.disabled = True

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connect()

    async def reconcile(body: kopf.Body, **_: Any) -> None:
        try:
            await reconciler.reconcile(body)
        except ReconcileError as error:
            raise kopf.TemporaryError(str(error), delay=config.retry_delay_seconds) from error

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(**resource, registry=registry, id="reconcile")(reconcile)

    return registry


async def resync_forever(*, client: kube.KubeClient, reconciler: Reconciler, config: OperatorConfig) -> None:
    """Reconcile every ``TwitterSystem`` every ``resync_seconds``, until cancelled."""
    while True:
        await asyncio.sleep(config.resync_seconds)
        await resync_once(client=client, reconciler=reconciler, config=config)


async def resync_once(*, client: kube.KubeClient, reconciler: Reconciler, config: OperatorConfig) -> None:
    namespaces: tuple[str | None, ...] = config.namespaces or (None,)
    for namespace in namespaces:
        try:
            systems = await client.list_all(TWITTER_SYSTEM, namespace)
        except kube.KubeApiError as error:
            log.error("resync.list_failed", namespace=namespace, error=str(error),
                      next_step=f"retrying in {config.resync_seconds}s")
            continue
        for system in systems:
            if (system.get("metadata") or {}).get("deletionTimestamp"):
                continue
            try:
                await reconciler.reconcile(system)
            except ReconcileError:
                pass  # logged by the reconciler; the next pass retries


async def run_operator(
    config: OperatorConfig,
    *,
    connect: Callable[[], kopf.ConnectionInfo] = discover_connection,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run kopf and the resync loop until ``stop_flag`` is set or the task is cancelled."""
    async with kube.KubeClient(connect) as client:
        reconciler = Reconciler(client)
        registry = build_registry(reconciler=reconciler, connect=connect, config=config)
        resync = asyncio.create_task(resync_forever(client=client, reconciler=reconciler, config=config))
        try:
            await kopf.operator(
                registry=registry,
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                standalone=True,
                liveness_endpoint=config.liveness_endpoint,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        finally:
            resync.cancel()
            await asyncio.gather(resync, return_exceptions=True)
