"""Spec validation beyond the CRD schema, and the restart-on-fault decisions."""

from __future__ import annotations

import datetime

import pytest

from tests.operator.test_reconcile import service_pod
from twitter_operator.faults import find_faulty_pods, recent_replacements
from twitter_operator.spec import InvalidSpecError, RestartOnFaultSpec, ServiceName, parse_spec

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)


def at(**delta: float) -> str:
    return (NOW - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_empty_spec_takes_defaults() -> None:
    spec = parse_spec({})

    assert spec.image.for_service(ServiceName.GATEWAY) == "twitter-system/gateway:0.1.0"
    assert spec.backup.schedule == "0 */4 * * *"
    assert spec.backup.keep_last == 6
    assert spec.restart_on_fault.enabled is True
    assert spec.databases.of(ServiceName.ACCOUNT).postgres is not None


@pytest.mark.parametrize(("schedule", "problem"), [
    ("*/5 * * *", "must have five cron fields, not 4"),
    ("0 0 * * * *", "must have five cron fields, not 6"),
    ("61 * * * *", "is not a valid cron expression"),
    ("0 25 * * *", "is not a valid cron expression"),
    ("0 0 * * mon-xyz", "is not a valid cron expression"),
])
def test_bad_cron_is_rejected(schedule: str, problem: str) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_spec({"backup": {"schedule": schedule}})

    assert "backup.schedule" in str(raised.value)
    assert problem in str(raised.value)


@pytest.mark.parametrize("schedule", ["0 */4 * * *", "15 3 * * 1-5", "*/10 * * * *", "0 0 1 1 *"])
def test_good_cron_is_accepted(schedule: str) -> None:
    assert parse_spec({"backup": {"schedule": schedule}}).backup.schedule == schedule


@pytest.mark.parametrize(("raw", "problem"), [
    ({"services": {"post": {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}}},
     "minReplicas 4 is above maxReplicas 2"),
    ({"databases": {"post": {}}}, "set exactly one of secretRef"),
    ({"databases": {"post": {"postgres": {}, "secretRef": {"name": "x"}}}}, "set exactly one of secretRef"),
    ({"backup": {"destination": {}}}, "set exactly one backup destination"),
    ({"services": {"post": {"replicas": -1}}}, "services.post.replicas"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    ({"unknownField": 1}, "unknownField"),
])
def test_invalid_spec_names_the_field(raw: dict, problem: str) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_spec(raw)

    assert problem in str(raised.value)


def test_faulty_pods_ordered_longest_first() -> None:
    policy = RestartOnFaultSpec(unreadySeconds=60)
    pods = [
        service_pod("short", ready=False, since=at(seconds=30)),
        service_pod("long", ready=False, since=at(seconds=600)),
        service_pod("medium", ready=False, since=at(seconds=120)),
        service_pod("healthy"),
    ]

    faulty = find_faulty_pods(pods, policy=policy, now=NOW)

    assert [pod.name for pod in faulty] == ["long", "medium"]
    assert [pod.reason for pod in faulty] == ["Unready", "Unready"]


def test_terminating_pod_is_not_faulty() -> None:
    pod = service_pod("going", ready=False, since=at(hours=1))
    pod["metadata"]["deletionTimestamp"] = at(seconds=5)

    assert find_faulty_pods([pod], policy=RestartOnFaultSpec(), now=NOW) == []


def test_crash_loop_is_faulty_at_once() -> None:
    pod = service_pod("looping", crash_loop=True)

    faulty = find_faulty_pods([pod], policy=RestartOnFaultSpec(unreadySeconds=3600), now=NOW)

    assert [(item.name, item.reason) for item in faulty] == [("looping", "CrashLoopBackOff")]


def test_replacements_older_than_an_hour_expire() -> None:
    times = [at(minutes=61), at(minutes=59), at(minutes=1), "not a time"]

    assert recent_replacements(times, now=NOW) == [at(minutes=59), at(minutes=1)]
