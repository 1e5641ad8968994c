"""The reconcile pass against the emulated API server, one pass at a time, without kopf."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.operator.conftest import NAMESPACE, Api, system_manifest, writes
from tests.operator.emulator import ClusterEmulator
from twitter_operator.reconcile import ReconcileError, Reconciler

DEPLOYMENTS = "apps/v1/deployments"
STATEFUL_SETS = "apps/v1/statefulsets"
SERVICES = "v1/services"
SECRETS = "v1/secrets"
PODS = "v1/pods"
EVENTS = "v1/events"
CRON_JOBS = "batch/v1/cronjobs"
JOBS = "batch/v1/jobs"
AUTOSCALERS = "autoscaling/v2/horizontalpodautoscalers"
NETWORK_POLICIES = "networking.k8s.io/v1/networkpolicies"

CHILD_RESOURCES = (DEPLOYMENTS, STATEFUL_SETS, SERVICES, SECRETS, CRON_JOBS, AUTOSCALERS, NETWORK_POLICIES)


def ago(**delta: float) -> str:
    moment = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(**delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def service_pod(name: str, *, component: str = "post", ready: bool = True,
                since: str | None = None, crash_loop: bool = False, instance: str = "social") -> dict[str, Any]:
    container_state = {"waiting": {"reason": "CrashLoopBackOff"}} if crash_loop else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "creationTimestamp": ago(hours=2),
            "labels": {
                "app.kubernetes.io/name": "twitter-system",
                "app.kubernetes.io/instance": instance,
                "app.kubernetes.io/managed-by": "twitter-operator",
                "app.kubernetes.io/component": component,
            },
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastTransitionTime": since or ago(hours=2)}],
            "containerStatuses": [{"name": component, "ready": ready, "state": container_state}],
        },
    }


def events_with_reason(cluster: ClusterEmulator, reason: str) -> list[dict[str, Any]]:
    return [event for event in cluster.live(EVENTS, NAMESPACE).values() if event.get("reason") == reason]


def condition(system: dict[str, Any], condition_type: str) -> dict[str, Any]:
    found = [item for item in system["status"]["conditions"] if item["type"] == condition_type]
    assert len(found) == 1, system["status"]["conditions"]
    return found[0]


async def reconcile_fresh(api: Api, reconciler: Reconciler, name: str = "social") -> dict[str, Any]:
    """Reconcile the stored resource as kopf would hand it over, and return it afterwards."""
    body = await api.get_system(name)
    assert body is not None
    await reconciler.reconcile(body)
    after = await api.get_system(name)
    assert after is not None
    return after


def mark_workloads_ready(cluster: ClusterEmulator) -> None:
    for deployment in cluster.live(DEPLOYMENTS, NAMESPACE).values():
        replicas = deployment["spec"].get("replicas", 1)
        name = deployment["metadata"]["name"]
        cluster.objects[DEPLOYMENTS, NAMESPACE, name]["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
        }
    for name in cluster.live(STATEFUL_SETS, NAMESPACE):
        cluster.objects[STATEFUL_SETS, NAMESPACE, name]["status"] = {"replicas": 1, "readyReplicas": 1}


async def test_create_makes_every_child_owned(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    created = await api.create_system(system_manifest())
    system = await reconcile_fresh(api, reconciler)

    assert sorted(cluster.live(DEPLOYMENTS, NAMESPACE)) == [
        "social-account", "social-gateway", "social-post", "social-timeline"]
    assert sorted(cluster.live(SERVICES, NAMESPACE)) == [
        "social-account", "social-account-postgres", "social-gateway", "social-post",
        "social-post-postgres", "social-timeline"]
    # The timeline database comes from the user's Secret, so only two StatefulSets run.
    assert sorted(cluster.live(STATEFUL_SETS, NAMESPACE)) == ["social-account-postgres", "social-post-postgres"]
    assert sorted(cluster.live(SECRETS, NAMESPACE)) == [
        "social-account-postgres", "social-post-postgres", "social-service-token"]
    assert sorted(cluster.live(CRON_JOBS, NAMESPACE)) == ["social-backup"]
    assert sorted(cluster.live(NETWORK_POLICIES, NAMESPACE)) == [
        "social-account-ingress", "social-account-postgres-ingress", "social-default-deny",
        "social-gateway-ingress", "social-post-ingress", "social-post-postgres-ingress",
        "social-timeline-ingress"]
    assert cluster.live(AUTOSCALERS, NAMESPACE) == {}

    for resource in CHILD_RESOURCES:
        for name, child in cluster.live(resource, NAMESPACE).items():
            references = child["metadata"]["ownerReferences"]
            assert references == [{
                "apiVersion": "twittersystem.dev/v1alpha1", "kind": "TwitterSystem", "name": "social",
                "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": False,
            }], f"{resource} {name}"

    assert system["status"]["observedGeneration"] == 1
    assert [item["type"] for item in system["status"]["conditions"]] == [
        "Ready", "Progressing", "Degraded", "BackupHealthy"]
    assert condition(system, "Ready")["status"] == "False"
    assert condition(system, "Progressing")["status"] == "True"
    assert condition(system, "Degraded")["status"] == "False"
    assert condition(system, "BackupHealthy")["reason"] == "NoBackupYet"
    assert system["status"]["services"]["gateway"] == {"replicas": 2, "readyReplicas": 0}


async def test_deployment_wiring(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    post = cluster.live(DEPLOYMENTS, NAMESPACE)["social-post"]
    pod_spec = post["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}

    assert container["image"] == "registry.example/twitter-system/post:0.1.0"
    assert "command" not in container  # the image's default command serves its service
    assert env["TWITTER_HOST"] == "0.0.0.0"
    assert env["TWITTER_PORT"] == "8082"
    assert env["TWITTER_ACCOUNT_URL"] == "http://social-account:8081"
    assert env["TWITTER_TIMELINE_URL"] == "http://social-timeline:8083"
    assert env["TWITTER_SERVICE_TOKEN"] == {"secretKeyRef": {"name": "social-service-token", "key": "token"}}
    assert env["TWITTER_POST_DATABASE_URL"] == {"secretKeyRef": {"name": "social-post-postgres", "key": "url"}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["initContainers"][0]["command"] == ["twitter-system", "migrate", "post"]

    timeline_env = {item["name"]: item.get("valueFrom")
                    for item in cluster.live(DEPLOYMENTS, NAMESPACE)["social-timeline"]["spec"]["template"]["spec"]
                    ["containers"][0]["env"]}
    assert timeline_env["TWITTER_TIMELINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": "timeline-database", "key": "url"}}
    gateway = cluster.live(DEPLOYMENTS, NAMESPACE)["social-gateway"]["spec"]["template"]["spec"]
    assert "initContainers" not in gateway  # the gateway owns no database


async def test_unchanged_system_writes_nothing(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    mark_workloads_ready(cluster)
    settled = await reconcile_fresh(api, reconciler)
    assert condition(settled, "Ready")["status"] == "True"

    before = writes(cluster)
    await reconcile_fresh(api, reconciler)
    await reconcile_fresh(api, reconciler)

    assert writes(cluster)[len(before):] == []


async def test_replica_change_scales_deployment(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    await api.patch_system("social", {"spec": {"services": {"post": {"replicas": 4}}}})
    system = await reconcile_fresh(api, reconciler)

    deployments = cluster.live(DEPLOYMENTS, NAMESPACE)
    assert deployments["social-post"]["spec"]["replicas"] == 4
    assert deployments["social-account"]["spec"]["replicas"] == 1
    assert system["status"]["observedGeneration"] == 2
    assert system["status"]["services"]["post"] == {"replicas": 4, "readyReplicas": 0}


async def test_autoscaling_adds_and_removes_hpa(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    autoscaling = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70}
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    await api.patch_system("social", {"spec": {"services": {"gateway": {"autoscaling": autoscaling}}}})
    await reconcile_fresh(api, reconciler)
    autoscaler = cluster.live(AUTOSCALERS, NAMESPACE)["social-gateway"]
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "social-gateway"}
    assert autoscaler["spec"]["minReplicas"] == 2
    assert autoscaler["spec"]["maxReplicas"] == 6
    assert autoscaler["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70

    await api.patch_system("social", {"spec": {"services": {"gateway": {"autoscaling": None}}}})
    await reconcile_fresh(api, reconciler)
    assert cluster.live(AUTOSCALERS, NAMESPACE) == {}


async def test_switch_to_own_database_removes_postgres(cluster: ClusterEmulator, api: Api,
                                                       reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    await api.patch_system("social", {"spec": {"databases": {"post": {
        "postgres": None, "secretRef": {"name": "post-database", "key": "url"}}}}})
    await reconcile_fresh(api, reconciler)

    assert sorted(cluster.live(STATEFUL_SETS, NAMESPACE)) == ["social-account-postgres"]
    assert "social-post-postgres" not in cluster.live(SERVICES, NAMESPACE)
    assert "social-post-postgres-ingress" not in cluster.live(NETWORK_POLICIES, NAMESPACE)
    post_env = {item["name"]: item.get("valueFrom")
                for item in cluster.live(DEPLOYMENTS, NAMESPACE)["social-post"]["spec"]["template"]["spec"]
                ["containers"][0]["env"]}
    assert post_env["TWITTER_POST_DATABASE_URL"] == {"secretKeyRef": {"name": "post-database", "key": "url"}}


async def test_backup_cron_job_follows_spec(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    cron_job = cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]
    assert cron_job["spec"]["schedule"] == "15 */6 * * *"
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron_job["spec"]["suspend"] is False
    pod_spec = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}
    assert container["image"] == "registry.example/twitter-system/tools:0.1.0"
    assert container["command"] == ["twitter-system", "backup"]
    assert env["TWITTER_BACKUP_KEEP"] == "9"
    assert env["TWITTER_BACKUP_DIR"] == "/backups"
    assert env["TWITTER_ACCOUNT_DATABASE_URL"] == {"secretKeyRef": {"name": "social-account-postgres", "key": "url"}}
    assert env["TWITTER_POST_DATABASE_URL"] == {"secretKeyRef": {"name": "social-post-postgres", "key": "url"}}
    assert "TWITTER_TIMELINE_DATABASE_URL" not in env  # rebuildable, so never backed up
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "social-backups"}} in pod_spec["volumes"]

    await api.patch_system("social", {"spec": {"backup": {"schedule": "0 3 * * *", "keepLast": 30,
                                                          "suspend": True}}})
    await reconcile_fresh(api, reconciler)
    cron_job = cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]
    env = {item["name"]: item.get("value") for item in
           cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert cron_job["spec"]["schedule"] == "0 3 * * *"
    assert cron_job["spec"]["suspend"] is True
    assert env["TWITTER_BACKUP_KEEP"] == "30"


async def test_s3_destination_passes_secret(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest(backup={"destination": {"s3": {"secretRef": {"name": "backup-s3"}}}}))
    system = await reconcile_fresh(api, reconciler)

    cron_job = cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]
    pod_spec = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron_job["spec"]["schedule"] == "0 */4 * * *"  # the default
    assert pod_spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "backup-s3"}}]
    assert {"name": "backups", "emptyDir": {}} in pod_spec["volumes"]
    assert condition(system, "Degraded")["status"] == "False"


async def test_no_destination_means_no_cron_job(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest(backup={"keepLast": 3}))
    system = await reconcile_fresh(api, reconciler)

    assert cluster.live(CRON_JOBS, NAMESPACE) == {}
    assert condition(system, "BackupHealthy")["status"] == "False"
    assert condition(system, "BackupHealthy")["reason"] == "NotConfigured"


@pytest.mark.parametrize(("job_condition", "result", "healthy"), [
    ("Complete", "Succeeded", "True"),
    ("Failed", "Failed", "False"),
])
async def test_backup_status_follows_latest_job(cluster: ClusterEmulator, api: Api, reconciler: Reconciler,
                                                job_condition: str, result: str, healthy: str) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    earlier, latest = ago(hours=8), ago(hours=2)
    labels = {"app.kubernetes.io/name": "twitter-system", "app.kubernetes.io/instance": "social",
              "app.kubernetes.io/managed-by": "twitter-operator", "app.kubernetes.io/component": "backup"}
    cluster.objects[JOBS, NAMESPACE, "social-backup-1"] = {
        "metadata": {"name": "social-backup-1", "namespace": NAMESPACE, "labels": labels,
                     "creationTimestamp": earlier},
        "status": {"conditions": [{"type": "Failed", "status": "True"}], "completionTime": earlier},
    }
    cluster.objects[JOBS, NAMESPACE, "social-backup-2"] = {
        "metadata": {"name": "social-backup-2", "namespace": NAMESPACE, "labels": labels,
                     "creationTimestamp": latest},
        "status": {"conditions": [{"type": job_condition, "status": "True"}], "completionTime": latest},
    }

    system = await reconcile_fresh(api, reconciler)

    assert system["status"]["lastBackup"] == {"job": "social-backup-2", "result": result, "time": latest}
    assert condition(system, "BackupHealthy")["status"] == healthy


async def test_invalid_cron_sets_degraded_once(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    deployments_before = cluster.live(DEPLOYMENTS, NAMESPACE)

    await api.patch_system("social", {"spec": {"backup": {"schedule": "61 * * * *"}}})
    system = await reconcile_fresh(api, reconciler)

    degraded = condition(system, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "InvalidSpec"
    assert "backup.schedule" in degraded["message"]
    assert system["status"]["observedGeneration"] == 2
    assert len(events_with_reason(cluster, "InvalidSpec")) == 1
    assert cluster.live(DEPLOYMENTS, NAMESPACE) == deployments_before  # running children are left alone
    assert cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]["spec"]["schedule"] == "15 */6 * * *"

    before = writes(cluster)
    await reconcile_fresh(api, reconciler)
    assert writes(cluster)[len(before):] == []  # no retry storm, no second Event

    await api.patch_system("social", {"spec": {"backup": {"schedule": "30 2 * * *"}}})
    system = await reconcile_fresh(api, reconciler)
    assert condition(system, "Degraded")["status"] == "False"
    assert cluster.live(CRON_JOBS, NAMESPACE)["social-backup"]["spec"]["schedule"] == "30 2 * * *"


async def test_invalid_spec_at_creation_makes_no_children(cluster: ClusterEmulator, api: Api,
                                                           reconciler: Reconciler) -> None:
    autoscaling = {"minReplicas": 5, "maxReplicas": 2}
    await api.create_system(system_manifest(services={"post": {"autoscaling": autoscaling}}))
    system = await reconcile_fresh(api, reconciler)

    assert condition(system, "Degraded")["reason"] == "InvalidSpec"
    assert "minReplicas 5 is above maxReplicas 2" in condition(system, "Degraded")["message"]
    for resource in CHILD_RESOURCES:
        assert cluster.live(resource, NAMESPACE) == {}, resource


async def test_unready_pod_is_replaced_with_event(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    cluster.objects[PODS, NAMESPACE, "social-post-stuck"] = service_pod("social-post-stuck", ready=False,
                                                                        since=ago(seconds=600))
    cluster.objects[PODS, NAMESPACE, "social-post-fresh"] = service_pod("social-post-fresh", ready=False,
                                                                        since=ago(seconds=10))
    cluster.objects[PODS, NAMESPACE, "social-post-fine"] = service_pod("social-post-fine")

    system = await reconcile_fresh(api, reconciler)

    assert sorted(cluster.live(PODS, NAMESPACE)) == ["social-post-fine", "social-post-fresh"]
    replaced = events_with_reason(cluster, "PodReplaced")
    assert len(replaced) == 1
    assert "social-post-stuck" in replaced[0]["message"]
    assert replaced[0]["type"] == "Warning"
    assert replaced[0]["involvedObject"]["name"] == "social"
    assert len(system["status"]["restartOnFault"]["replacementTimes"]) == 1


async def test_crash_looping_pod_is_replaced(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    cluster.objects[PODS, NAMESPACE, "social-gateway-loop"] = service_pod(
        "social-gateway-loop", component="gateway", crash_loop=True)

    await reconcile_fresh(api, reconciler)

    assert cluster.live(PODS, NAMESPACE) == {}
    assert "CrashLoopBackOff" in events_with_reason(cluster, "PodReplaced")[0]["message"]


async def test_pods_outside_the_system_are_kept(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    cluster.objects[PODS, NAMESPACE, "other-post-stuck"] = service_pod(
        "other-post-stuck", ready=False, since=ago(hours=1), instance="other")
    cluster.objects[PODS, NAMESPACE, "social-account-postgres-0"] = service_pod(
        "social-account-postgres-0", component="database-account", ready=False, since=ago(hours=1))

    await reconcile_fresh(api, reconciler)

    assert sorted(cluster.live(PODS, NAMESPACE)) == ["other-post-stuck", "social-account-postgres-0"]


async def test_hourly_budget_stops_storm(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())  # maxReplacementsPerHour: 2
    await reconcile_fresh(api, reconciler)
    for index in range(5):
        name = f"social-post-{index}"
        cluster.objects[PODS, NAMESPACE, name] = service_pod(name, ready=False, since=ago(seconds=900 - index))

    system = await reconcile_fresh(api, reconciler)

    # The two that waited longest go; the rest stay until the hour has passed.
    assert sorted(cluster.live(PODS, NAMESPACE)) == ["social-post-2", "social-post-3", "social-post-4"]
    assert len(events_with_reason(cluster, "PodReplaced")) == 2
    assert len(events_with_reason(cluster, "RestartBudgetExhausted")) == 1
    assert condition(system, "Degraded")["reason"] == "RestartBudgetExhausted"

    before = writes(cluster)
    await reconcile_fresh(api, reconciler)
    assert writes(cluster)[len(before):] == []
    assert len(cluster.live(PODS, NAMESPACE)) == 3


async def test_old_replacements_free_the_budget(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    stored = cluster.objects["twittersystem.dev/v1alpha1/twittersystems", NAMESPACE, "social"]
    stored["status"] = {**stored.raw["status"],
                        "restartOnFault": {"replacementTimes": [ago(minutes=90), ago(minutes=70), ago(minutes=5)]}}
    cluster.objects[PODS, NAMESPACE, "social-post-0"] = service_pod("social-post-0", ready=False, since=ago(hours=1))

    system = await reconcile_fresh(api, reconciler)

    assert cluster.live(PODS, NAMESPACE) == {}
    assert len(system["status"]["restartOnFault"]["replacementTimes"]) == 2


async def test_disabled_policy_keeps_pods(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest(restartOnFault={"enabled": False}))
    await reconcile_fresh(api, reconciler)
    cluster.objects[PODS, NAMESPACE, "social-post-0"] = service_pod("social-post-0", ready=False, since=ago(hours=1))

    await reconcile_fresh(api, reconciler)

    assert sorted(cluster.live(PODS, NAMESPACE)) == ["social-post-0"]


async def test_network_policies_mirror_segmentation(cluster: ClusterEmulator, api: Api,
                                                    reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)
    policies = cluster.live(NETWORK_POLICIES, NAMESPACE)

    deny = policies["social-default-deny"]["spec"]
    assert deny["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "social"
    assert deny["ingress"] == []

    gateway = policies["social-gateway-ingress"]["spec"]["ingress"]
    assert gateway == [{"ports": [{"protocol": "TCP", "port": 8080}]}]  # from anywhere

    account = policies["social-account-ingress"]["spec"]["ingress"][0]
    callers = account["from"][0]["podSelector"]["matchExpressions"][1]
    assert callers == {"key": "app.kubernetes.io/component", "operator": "In",
                       "values": ["gateway", "account", "post", "timeline"]}

    database = policies["social-post-postgres-ingress"]["spec"]
    assert database["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "database-post"
    database_callers = database["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]["values"]
    assert database_callers == ["post", "backup"]


async def test_existing_secret_is_not_overwritten(cluster: ClusterEmulator, api: Api,
                                                  reconciler: Reconciler) -> None:
    user_secret = {"metadata": {"name": "social-service-token", "namespace": NAMESPACE},
                   "stringData": {"token": "chosen-by-the-user"}}
    cluster.objects[SECRETS, NAMESPACE, "social-service-token"] = user_secret
    await api.create_system(system_manifest())

    await reconcile_fresh(api, reconciler)
    await reconcile_fresh(api, reconciler)

    assert cluster.live(SECRETS, NAMESPACE)["social-service-token"] == user_secret


async def test_generated_database_url_points_at_postgres(cluster: ClusterEmulator, api: Api,
                                                         reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    await reconcile_fresh(api, reconciler)

    secret = cluster.live(SECRETS, NAMESPACE)["social-account-postgres"]["stringData"]
    password = secret["password"]
    assert len(password) >= 24
    assert secret["url"] == (f"postgresql+asyncpg://twitter:{password}"
                             "@social-account-postgres.twitter.svc:5432/account")
    stateful_set = cluster.live(STATEFUL_SETS, NAMESPACE)["social-account-postgres"]
    container = stateful_set["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "POSTGRES_DB", "value": "account"} in container["env"]
    assert stateful_set["spec"]["serviceName"] == "social-account-postgres"


async def test_deleting_system_removes_children(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest(services={"post": {"autoscaling": {"maxReplicas": 3}}}))
    system = await reconcile_fresh(api, reconciler)
    assert not system["metadata"].get("finalizers")

    await api.delete_system("social")

    assert await api.get_system("social") is None
    for resource in CHILD_RESOURCES:
        assert cluster.live(resource, NAMESPACE) == {}, resource


async def test_api_failure_degrades_once(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    await api.create_system(system_manifest())
    cluster["get /apis/batch/v1/namespaces/twitter/cronjobs"] << 500

    for _ in range(2):
        body = await api.get_system("social")
        assert body is not None
        with pytest.raises(ReconcileError) as raised:
            await reconciler.reconcile(body)
        assert "HTTP 500" in str(raised.value)

    system = await api.get_system("social")
    assert system is not None
    degraded = condition(system, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "ReconcileFailed"
    assert "/cronjobs failed with HTTP 500" in degraded["message"]
    assert len(events_with_reason(cluster, "ReconcileFailed")) == 1


async def test_foreign_object_is_not_adopted(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    foreign = {"metadata": {"name": "social-gateway", "namespace": NAMESPACE}, "spec": {"ports": []}}
    cluster.objects[SERVICES, NAMESPACE, "social-gateway"] = foreign
    await api.create_system(system_manifest())

    body = await api.get_system("social")
    assert body is not None
    with pytest.raises(ReconcileError):
        await reconciler.reconcile(body)

    system = await api.get_system("social")
    assert system is not None
    assert "Service social-gateway already exists and is not managed" in condition(system, "Degraded")["message"]
    assert cluster.live(SERVICES, NAMESPACE)["social-gateway"] == foreign


async def test_overlong_name_degrades(cluster: ClusterEmulator, api: Api, reconciler: Reconciler) -> None:
    name = "a" * 35
    manifest = system_manifest()
    manifest["metadata"]["name"] = name
    await api.create_system(manifest)

    system = await reconcile_fresh(api, reconciler, name)

    assert condition(system, "Degraded")["reason"] == "InvalidSpec"
    assert "at most 34" in condition(system, "Degraded")["message"]
    assert cluster.live(DEPLOYMENTS, NAMESPACE) == {}
