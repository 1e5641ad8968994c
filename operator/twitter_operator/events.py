"""Kubernetes Events about a ``TwitterSystem``, posted through the operator's own client.

The reconciler posts an Event only when something changes (a pod replaced, a condition
turning bad), never on every pass, so a persistent problem yields one Event, not a storm.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import structlog

from twitter_operator.conditions import format_time, utc_now
from twitter_operator.kube import KubeApiError, KubeClient
from twitter_operator.manifests import API_VERSION, KIND

COMPONENT = "twitter-operator"
# The API server rejects longer messages.
MAX_MESSAGE_LENGTH = 1024

log = structlog.get_logger("twitter_operator.events")


async def post_event(
    client: KubeClient,
    system: Mapping[str, Any],
    *,
    event_type: str,
    reason: str,
    message: str,
) -> None:
    """Post an Event on the ``TwitterSystem`` ``system``; a failure is logged, not raised,
    because a lost Event must not stop the reconcile that caused it."""
    metadata = system["metadata"]
    now = format_time(utc_now())
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata['name']}.{secrets.token_hex(8)}",
            "namespace": metadata["namespace"],
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:MAX_MESSAGE_LENGTH],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await client.create(metadata["namespace"], event)
    except KubeApiError as error:
        log.warning("event.post_failed", system=metadata["name"], reason=reason, error=str(error))
