"""One idempotent reconcile of a ``TwitterSystem``: children, restart-on-fault, status.

kopf calls it on create, resume and spec change, and the operator's resync loop calls it
periodically. Each pass compares the children the spec requests with those in the
cluster and writes only differences, so a pass over an unchanged, settled resource makes no
write at all. An invalid spec leaves the children as they are, sets ``Degraded`` and
posts one Event; it is not retried until the spec changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from twitter_operator import conditions, faults, kube, manifests
from twitter_operator.events import post_event
from twitter_operator.spec import (
    DATABASE_OWNERS,
    InvalidSpecError,
    ServiceName,
    TwitterSystemSpec,
    check_name,
    parse_spec,
)

TWITTER_SYSTEM = kube.Kind(manifests.API_VERSION, manifests.KIND, manifests.PLURAL)

# The kinds the operator compares and prunes, in creation order: NetworkPolicies first,
# so no pod ever runs unfenced, then Services before the workloads that call them.
COMPARED_KINDS = (
    kube.NETWORK_POLICY,
    kube.SERVICE,
    kube.STATEFUL_SET,
    kube.DEPLOYMENT,
    kube.HORIZONTAL_POD_AUTOSCALER,
    kube.CRON_JOB,
)

log = structlog.get_logger("twitter_operator.reconcile")


class ReconcileError(Exception):
    """A pass could not finish because an API call failed; the next pass retries."""


@dataclasses.dataclass
class _Observed:
    """The children one pass found, and its restart-on-fault outcome, for the status block."""

    deployments: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    stateful_sets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    cron_job: dict[str, Any] | None = None
    latest_backup_job: dict[str, Any] | None = None
    replacement_times: list[str] = dataclasses.field(default_factory=list)
    budget_exhausted: bool = False


def matches(desired: Any, live: Any) -> bool:
    """Tell whether ``live`` already has every field of ``desired`` with the same value.

    Fields the API server adds (defaults, status, managed fields) are ignored. An empty
    list or map in ``desired`` matches an absent field, because the server omits empty values.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return not desired and live is None
        return all(
            matches(value, live.get(key)) if key in live else _is_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if live is None:
            return not desired
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(matches(want, have) for want, have in zip(desired, live, strict=True))
    return desired == live


def _is_empty(value: Any) -> bool:
    return isinstance(value, (Mapping, list)) and not value


def _comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Select the part of a child the operator owns: labels, owner references and all but status."""
    metadata = manifest["metadata"]
    owned = {key: value for key, value in manifest.items() if key not in {"apiVersion", "kind", "metadata", "status"}}
    owned["metadata"] = {"labels": metadata["labels"], "ownerReferences": metadata["ownerReferences"]}
    return owned


class Reconciler:
    """Reconcile ``TwitterSystem`` resources through a :class:`kube.KubeClient`."""

    def __init__(self, client: kube.KubeClient, *, clock: Callable[[], datetime.datetime] = conditions.utc_now) -> None:
        self._client = client
        self._clock = clock
        # kopf's handlers and the resync loop may reach the same resource at once.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Bring the children and the status of ``body`` in line with its spec.

        Raises:
            ReconcileError: an API call failed; ``Degraded`` is set when the API allows it.
        """
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        lock = self._locks.setdefault((namespace, name), asyncio.Lock())
        async with lock:
            # The body may be stale by now (another pass held the lock, or it came from a list),
            # and acting on a deleted resource would recreate orphaned children.
            try:
                current = await self._client.get(TWITTER_SYSTEM, namespace, name)
            except kube.KubeApiError as error:
                raise ReconcileError(str(error)) from error
            if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
                self._locks.pop((namespace, name), None)
                return
            await self._reconcile_locked(current)

    async def _reconcile_locked(self, system: dict[str, Any]) -> None:
        metadata = system["metadata"]
        owner = manifests.Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata.get("uid", ""))
        bound_log = log.bind(system=owner.name, namespace=owner.namespace)
        now = self._clock()

        try:
            check_name(owner.name)
            spec = parse_spec(system.get("spec"))
        except InvalidSpecError as error:
            bound_log.warning("reconcile.invalid_spec", error=str(error),
                              next_step="children kept as they are until the spec is fixed")
            await self._write_status(system, self._invalid_spec_status(system, str(error), now=now),
                                     event=("InvalidSpec", str(error)))
            return

        try:
            observed = await self._apply(system, owner, spec, now=now)
        except kube.KubeApiError as error:
            bound_log.error("reconcile.failed", error=str(error), next_step="retrying on the next pass")
            failed = self._failed_status(system, str(error), now=now)
            try:
                await self._write_status(system, failed, event=("ReconcileFailed", str(error)))
            except kube.KubeApiError:
                pass  # the API is failing, and the original error, raised below, is the more useful one
            raise ReconcileError(str(error)) from error

        status = self._status(system, spec, observed, now=now)
        event = None
        if observed.budget_exhausted:
            event = ("RestartBudgetExhausted",
                     "faulty pods remain but the hourly budget of replacements is spent; they are left for now")
        await self._write_status(system, status, event=event)

    async def _apply(self, system: Mapping[str, Any], owner: manifests.Owner, spec: TwitterSystemSpec,
                     *, now: datetime.datetime) -> _Observed:
        observed = _Observed()
        await self._ensure_generated_secrets(owner, spec)

        desired = manifests.build_children(owner, spec)
        for kind in COMPARED_KINDS:
            desired_by_name = {item["metadata"]["name"]: item for item in desired if item["kind"] == kind.kind}
            live = await self._sync_kind(kind, owner, desired_by_name)
            if kind is kube.DEPLOYMENT:
                observed.deployments = live
            elif kind is kube.STATEFUL_SET:
                observed.stateful_sets = live
            elif kind is kube.CRON_JOB:
                observed.cron_job = live.get(manifests.backup_name(owner.name))

        if observed.cron_job is not None:
            observed.latest_backup_job = await self._latest_backup_job(owner)
        await self._replace_faulty_pods(system, owner, spec, observed, now=now)
        return observed

    async def _ensure_generated_secrets(self, owner: manifests.Owner, spec: TwitterSystemSpec) -> None:
        # Generated once and never compared: rewriting a password would lock the services out.
        for secret in manifests.build_generated_secrets(owner, spec):
            name = secret["metadata"]["name"]
            if await self._client.get(kube.SECRET, owner.namespace, name) is not None:
                continue
            try:
                await self._client.create(owner.namespace, secret)
            except kube.ConflictError:
                continue  # created meanwhile by another pass; its value is the one to keep
            log.info("child.created", system=owner.name, kind="Secret", name=name)

    async def _sync_kind(self, kind: kube.Kind, owner: manifests.Owner,
                         desired: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Create, patch and prune one kind of child; return the live objects by name."""
        found = await self._client.list(kind, owner.namespace, labels=manifests.instance_labels(owner.name))
        live = {item["metadata"]["name"]: item for item in found}

        for name, manifest in desired.items():
            current = live.get(name)
            if current is None:
                try:
                    live[name] = await self._client.create(owner.namespace, manifest)
                except kube.ConflictError as error:
                    # The listing by our labels missed it, so someone else's object has this name.
                    raise kube.KubeApiError(
                        f"{kind.kind} {name} already exists and is not managed by TwitterSystem {owner.name}: "
                        "delete or rename it",
                        status=409,
                    ) from error
                log.info("child.created", system=owner.name, kind=kind.kind, name=name)
            elif not matches(_comparable(manifest), current):
                live[name] = await self._client.patch(kind, owner.namespace, name, _comparable(manifest))
                log.info("child.updated", system=owner.name, kind=kind.kind, name=name)

        for name in sorted(set(live) - set(desired)):
            if not _owned_by(live[name], owner.uid):
                continue  # labelled like ours but not ours: never delete what we did not create
            await self._client.delete(kind, owner.namespace, name)
            del live[name]
            log.info("child.deleted", system=owner.name, kind=kind.kind, name=name,
                     reason="no longer in the spec")
        return live

    async def _latest_backup_job(self, owner: manifests.Owner) -> dict[str, Any] | None:
        jobs = await self._client.list(kube.JOB, owner.namespace,
                                       labels=manifests.component_labels(owner.name, "backup"))
        if not jobs:
            return None
        return max(jobs, key=lambda job: (job.get("metadata") or {}).get("creationTimestamp") or "")

    async def _replace_faulty_pods(self, system: Mapping[str, Any], owner: manifests.Owner,
                                   spec: TwitterSystemSpec, observed: _Observed,
                                   *, now: datetime.datetime) -> None:
        previous = ((system.get("status") or {}).get("restartOnFault") or {}).get("replacementTimes") or []
        observed.replacement_times = faults.recent_replacements(previous, now=now)
        policy = spec.restart_on_fault
        if not policy.enabled:
            return

        pods = await self._client.list(kube.POD, owner.namespace, labels=manifests.instance_labels(owner.name))
        service_pods = [
            pod for pod in pods
            if (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/component") in set(ServiceName)
        ]
        faulty = faults.find_faulty_pods(service_pods, policy=policy, now=now)
        for pod in faulty:
            if len(observed.replacement_times) >= policy.max_replacements_per_hour:
                observed.budget_exhausted = True
                log.warning("fault.budget_exhausted", system=owner.name, pod=pod.name, reason=pod.reason,
                            budget=policy.max_replacements_per_hour, next_step="left in place until the budget frees up")
                continue
            if not await self._client.delete(kube.POD, owner.namespace, pod.name):
                continue
            observed.replacement_times.append(conditions.format_time(now))
            log.warning("fault.pod_replaced", system=owner.name, pod=pod.name, reason=pod.reason, detail=pod.detail)
            await post_event(self._client, system, event_type="Warning", reason="PodReplaced",
                             message=f"deleted pod {pod.name} so a fresh one replaces it: {pod.detail}")

    # Status.

    def _status(self, system: Mapping[str, Any], spec: TwitterSystemSpec, observed: _Observed,
                *, now: datetime.datetime) -> dict[str, Any]:
        generation = system["metadata"].get("generation")
        previous = ((system.get("status") or {}).get("conditions")) or []

        services: dict[str, dict[str, int]] = {}
        not_ready: list[str] = []
        rolling: list[str] = []
        for service in ServiceName:
            deployment = observed.deployments.get(manifests.workload_name(system["metadata"]["name"], service)) or {}
            expected = (deployment.get("spec") or {}).get("replicas")
            if expected is None:
                expected = spec.services.of(service).replicas
            live_status = deployment.get("status") or {}
            ready = int(live_status.get("readyReplicas") or 0)
            updated = int(live_status.get("updatedReplicas") or 0)
            services[str(service)] = {"replicas": expected, "readyReplicas": ready}
            if ready < expected:
                not_ready.append(f"{service} {ready}/{expected}")
            observed_generation = live_status.get("observedGeneration")
            stale = observed_generation is not None and observed_generation < (deployment.get("metadata") or {}).get("generation", 0)
            if updated < expected or stale:
                rolling.append(str(service))
        for database in DATABASE_OWNERS:
            name = manifests.postgres_name(system["metadata"]["name"], database)
            if name in observed.stateful_sets:
                ready = int((observed.stateful_sets[name].get("status") or {}).get("readyReplicas") or 0)
                if ready < 1:
                    not_ready.append(f"{database} database 0/1")

        def build(condition_type: str, *, status: bool | None, reason: str, message: str) -> dict[str, Any]:
            return conditions.condition(condition_type, status=status, reason=reason, message=message,
                                        generation=generation, previous=previous, now=now)

        if observed.budget_exhausted:
            degraded = build(conditions.DEGRADED, status=True, reason="RestartBudgetExhausted",
                             message=f"faulty pods remain after {spec.restart_on_fault.max_replacements_per_hour} "
                                     "replacements in the last hour")
        else:
            degraded = build(conditions.DEGRADED, status=False, reason="AsExpected", message="")

        status = {
            "observedGeneration": generation,
            "conditions": [
                build(conditions.READY, status=not not_ready,
                      reason="ReplicasNotReady" if not_ready else "AllReplicasReady",
                      message="not ready: " + ", ".join(not_ready) if not_ready else ""),
                build(conditions.PROGRESSING, status=bool(rolling),
                      reason="RolloutInProgress" if rolling else "RolloutComplete",
                      message="rolling out: " + ", ".join(rolling) if rolling else ""),
                degraded,
                self._backup_condition(spec, observed, build),
            ],
            "services": services,
            "restartOnFault": {"replacementTimes": observed.replacement_times},
            # Job history is pruned by the CronJob; the last known backup stays in the status.
            "lastBackup": self._last_backup(observed) or (system.get("status") or {}).get("lastBackup") or {},
        }
        return status

    @staticmethod
    def _backup_condition(spec: TwitterSystemSpec, observed: _Observed,
                          build: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        if spec.backup.destination is None:
            return build(conditions.BACKUP_HEALTHY, status=False, reason="NotConfigured",
                         message="spec.backup.destination is not set, so no backups are taken")
        if spec.backup.suspend:
            return build(conditions.BACKUP_HEALTHY, status=None, reason="Suspended",
                         message="backups are suspended by spec.backup.suspend")
        result = _job_result(observed.latest_backup_job)
        if result is None:
            return build(conditions.BACKUP_HEALTHY, status=None, reason="NoBackupYet",
                         message=f"the first backup runs on the schedule {spec.backup.schedule!r}")
        if result == "Failed":
            name = observed.latest_backup_job["metadata"]["name"]  # type: ignore[index]
            return build(conditions.BACKUP_HEALTHY, status=False, reason="BackupFailed",
                         message=f"the latest backup job {name} failed; see its pod's log")
        if result == "Running":
            return build(conditions.BACKUP_HEALTHY, status=None, reason="BackupRunning",
                         message="a backup job is running")
        return build(conditions.BACKUP_HEALTHY, status=True, reason="BackupSucceeded", message="")

    @staticmethod
    def _last_backup(observed: _Observed) -> dict[str, Any]:
        job = observed.latest_backup_job
        result = _job_result(job)
        if job is None or result is None:
            return {}
        job_status = job.get("status") or {}
        return {
            "job": job["metadata"]["name"],
            "result": result,
            "time": job_status.get("completionTime") or job_status.get("startTime")
            or job["metadata"].get("creationTimestamp"),
        }

    def _invalid_spec_status(self, system: Mapping[str, Any], message: str,
                             *, now: datetime.datetime) -> dict[str, Any]:
        return self._degraded_status(system, reason="InvalidSpec", message=message, now=now)

    def _failed_status(self, system: Mapping[str, Any], message: str, *, now: datetime.datetime) -> dict[str, Any]:
        return self._degraded_status(system, reason="ReconcileFailed", message=message, now=now)

    @staticmethod
    def _degraded_status(system: Mapping[str, Any], *, reason: str, message: str,
                         now: datetime.datetime) -> dict[str, Any]:
        """Keep every other part of the status, replace Degraded; observedGeneration moves on
        because this generation was looked at, and found wanting."""
        current = dict(system.get("status") or {})
        current.pop("kopf", None)
        previous = current.get("conditions") or []
        generation = system["metadata"].get("generation")
        degraded = conditions.condition(conditions.DEGRADED, status=True, reason=reason, message=message,
                                        generation=generation, previous=previous, now=now)
        others = [item for item in previous if item.get("type") != conditions.DEGRADED]
        current["conditions"] = [*others, degraded]
        current["observedGeneration"] = generation
        return current

    async def _write_status(self, system: Mapping[str, Any], status: dict[str, Any],
                            *, event: tuple[str, str] | None) -> None:
        """Patch the status when it differs, and post ``event`` when Degraded has just turned
        True or changed its reason or message."""
        current = dict(system.get("status") or {})
        current.pop("kopf", None)
        if matches(status, current) and matches(current, status):
            return

        metadata = system["metadata"]
        # Fields that vanish from the computed status are removed, not left stale.
        patch = {key: status.get(key) for key in set(current) | set(status)}
        await self._client.patch(TWITTER_SYSTEM, metadata["namespace"], metadata["name"],
                                 {"status": patch}, subresource="status")

        if event is None:
            return
        before = conditions.find(current.get("conditions") or [], conditions.DEGRADED) or {}
        after = conditions.find(status.get("conditions") or [], conditions.DEGRADED) or {}
        changed = any(before.get(field) != after.get(field) for field in ("status", "reason", "message"))
        if after.get("status") == "True" and changed:
            reason, message = event
            await post_event(self._client, system, event_type="Warning", reason=reason, message=message)


def _owned_by(item: Mapping[str, Any], uid: str) -> bool:
    references: Sequence[Mapping[str, Any]] = (item.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


def _job_result(job: Mapping[str, Any] | None) -> str | None:
    if job is None:
        return None
    for item in (job.get("status") or {}).get("conditions") or []:
        if item.get("status") != "True":
            continue
        if item.get("type") in {"Complete", "SuccessCriteriaMet"}:
            return "Succeeded"
        if item.get("type") in {"Failed", "FailureTarget"}:
            return "Failed"
    return "Running"
