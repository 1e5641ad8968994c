"""The restart-on-fault policy: which service pods to replace, and the hourly budget.

Kubernetes restarts a container whose liveness probe fails, but a pod that stays
unready (its database gone, or a wedged handler while /healthz still passes) or keeps
crash-looping on one node is never replaced by Kubernetes itself. The operator deletes
such a pod so its Deployment schedules a fresh one, at most ``maxReplacementsPerHour``
times in any hour, so a fault that a new pod cannot fix does not turn into a storm.

The decisions are pure functions of the pods, the policy and the time; the reconciler
performs the deletions and keeps the replacement times in the resource's status, so the
budget survives operator restarts.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from twitter_operator.conditions import parse_time
from twitter_operator.spec import RestartOnFaultSpec

BUDGET_WINDOW = datetime.timedelta(hours=1)
CRASH_LOOP_REASON = "CrashLoopBackOff"


@dataclasses.dataclass(frozen=True)
class FaultyPod:
    name: str
    reason: str  # "Unready" or "CrashLoopBackOff"
    detail: str


def recent_replacements(times: Iterable[str], *, now: datetime.datetime) -> list[str]:
    """Keep the replacement times that still count against the budget, oldest first."""
    recent = []
    for value in times:
        moment = parse_time(value)
        if moment is not None and now - moment < BUDGET_WINDOW:
            recent.append(value)
    return sorted(recent)


def find_faulty_pods(
    pods: Sequence[Mapping[str, Any]],
    *,
    policy: RestartOnFaultSpec,
    now: datetime.datetime,
) -> list[FaultyPod]:
    """Return the pods that crash-loop or have been unready for longer than the policy allows,
    longest-faulty first, so a small budget goes to the pods that waited longest."""
    faulty: list[tuple[datetime.datetime, FaultyPod]] = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            continue  # already going away
        status = pod.get("status") or {}
        name = metadata.get("name", "")

        crash_loop = _crash_looping_container(status)
        if crash_loop is not None:
            since = parse_time(metadata.get("creationTimestamp")) or now
            faulty.append((since, FaultyPod(name, CRASH_LOOP_REASON, f"container {crash_loop} is in CrashLoopBackOff")))
            continue

        unready_since = _unready_since(status)
        if unready_since is None:
            continue
        unready_for = now - unready_since
        if unready_for.total_seconds() > policy.unready_seconds:
            faulty.append((unready_since, FaultyPod(
                name, "Unready",
                f"unready for {int(unready_for.total_seconds())}s, more than the allowed {policy.unready_seconds}s",
            )))
    return [pod for _, pod in sorted(faulty, key=lambda item: item[0])]


def _crash_looping_container(status: Mapping[str, Any]) -> str | None:
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == CRASH_LOOP_REASON:
            return container.get("name", "?")
    return None


def _unready_since(status: Mapping[str, Any]) -> datetime.datetime | None:
    for item in status.get("conditions") or []:
        if item.get("type") == "Ready" and item.get("status") != "True":
            return parse_time(item.get("lastTransitionTime"))
    return None
