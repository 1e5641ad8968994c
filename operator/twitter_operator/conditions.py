"""Status conditions in the Kubernetes convention, and the status block the operator writes.

A condition keeps its ``lastTransitionTime`` while its status stays the same, so a pass
that observes nothing new computes the exact status already stored and writes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
BACKUP_HEALTHY = "BackupHealthy"
CONDITION_TYPES = (READY, PROGRESSING, DEGRADED, BACKUP_HEALTHY)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """Render a time as Kubernetes does: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def condition(
    condition_type: str,
    *,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
) -> dict[str, Any]:
    """Build one condition; ``status=None`` means Unknown."""
    if status is None:
        rendered_status = "Unknown"
    elif status:
        rendered_status = "True"
    else:
        rendered_status = "False"
    earlier = next((item for item in previous if item.get("type") == condition_type), None)
    if earlier is not None and earlier.get("status") == rendered_status and earlier.get("lastTransitionTime"):
        transition_time = earlier["lastTransitionTime"]
    else:
        transition_time = format_time(now)
    rendered: dict[str, Any] = {
        "type": condition_type,
        "status": rendered_status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition_time,
    }
    if generation is not None:
        rendered["observedGeneration"] = generation
    return rendered


def find(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> Mapping[str, Any] | None:
    return next((item for item in conditions if item.get("type") == condition_type), None)


def is_true(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> bool:
    found = find(conditions, condition_type)
    return found is not None and found.get("status") == "True"
