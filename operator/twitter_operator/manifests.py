"""Desired child objects of one ``TwitterSystem``, as plain manifests.

They are pure functions of the resource's name, namespace, uid and parsed spec. The
reconciler compares their output with what the cluster contains and writes only the
difference, so the same input must give the same manifests: no timestamps and no random
values. Generated secrets are random, so they are built separately and created once.

Every child carries an owner reference to the ``TwitterSystem``, so Kubernetes' garbage
collector removes it with its owner and no finalizer is needed.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from twitter_operator.spec import (
    BACKED_UP_DATABASES,
    DATABASE_OWNERS,
    SERVICE_PORTS,
    ServiceName,
    TwitterSystemSpec,
)

API_GROUP = "twittersystem.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "TwitterSystem"
PLURAL = "twittersystems"

MANAGED_BY = "twitter-operator"
POSTGRES_PORT = 5432
POSTGRES_USER = "twitter"
# The uid of the `twitter` user in the images that compose/Dockerfile builds.
SERVICE_UID = 10001
# The official postgres image's postgres user.
POSTGRES_UID = 999
BACKUP_MOUNT = "/backups"
TOOLS_IMAGE = "tools"


@dataclasses.dataclass(frozen=True)
class Owner:
    """The ``TwitterSystem`` whose children are being built."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # With blockOwnerDeletion false, a foreground deletion of the owner does not wait for
        # this child, and the operator needs no update right on the owner's finalizers.
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }


def instance_labels(name: str) -> dict[str, str]:
    """Labels on every child of the ``TwitterSystem`` called ``name``; the operator lists by them."""
    return {
        "app.kubernetes.io/name": "twitter-system",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def component_labels(name: str, component: str) -> dict[str, str]:
    return {**instance_labels(name), "app.kubernetes.io/component": component}


def selector_labels(name: str, component: str) -> dict[str, str]:
    # Selectors are immutable on Deployments and StatefulSets, so they hold no version.
    return {
        "app.kubernetes.io/name": "twitter-system",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
    }


def _metadata(owner: Owner, name: str, component: str, spec: TwitterSystemSpec) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {
            **component_labels(owner.name, component),
            "app.kubernetes.io/part-of": "twitter-system",
            "app.kubernetes.io/version": spec.image.tag,
        },
        "ownerReferences": [owner.reference()],
    }


# Names of the children, in one place so the reconciler, tests and docs agree.

def service_token_secret_name(system: str) -> str:
    return f"{system}-service-token"


def workload_name(system: str, service: ServiceName) -> str:
    return f"{system}-{service}"


def postgres_name(system: str, owner: ServiceName) -> str:
    return f"{system}-{owner}-postgres"


def backup_name(system: str) -> str:
    return f"{system}-backup"


def service_url(system: str, service: ServiceName) -> str:
    return f"http://{workload_name(system, service)}:{SERVICE_PORTS[service]}"


# Generated secrets: random, so they are created once and never compared or rewritten.

def build_generated_secrets(owner: Owner, spec: TwitterSystemSpec) -> list[dict[str, Any]]:
    """Build the Secrets the operator creates only when they are missing."""
    generated = [
        _secret(owner, spec, service_token_secret_name(owner.name), "service-token",
                {"token": secrets.token_urlsafe(32)}),
    ]
    for database in DATABASE_OWNERS:
        if spec.databases.of(database).postgres is None:
            continue
        # NOTE: PostgreSQL keeps the password it was initialised with. A recreated TwitterSystem
        # that finds the retained volume but generates a new password cannot connect.
        password = secrets.token_urlsafe(24)
        host = f"{postgres_name(owner.name, database)}.{owner.namespace}.svc"
        url = f"postgresql+asyncpg://{POSTGRES_USER}:{password}@{host}:{POSTGRES_PORT}/{database}"
        generated.append(
            _secret(owner, spec, postgres_name(owner.name, database), f"database-{database}",
                    {"password": password, "url": url})
        )
    return generated


def _secret(owner: Owner, spec: TwitterSystemSpec, name: str, component: str,
            data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(owner, name, component, spec),
        "type": "Opaque",
        "stringData": data,
    }


# Compared children: rebuilt on every pass and patched when the cluster differs.

def build_children(owner: Owner, spec: TwitterSystemSpec) -> list[dict[str, Any]]:
    """Build every compared child: workloads, Services, HPAs, the backup CronJob, NetworkPolicies."""
    children: list[dict[str, Any]] = []
    for database in DATABASE_OWNERS:
        if spec.databases.of(database).postgres is not None:
            children.append(_postgres_service(owner, spec, database))
            children.append(_postgres_stateful_set(owner, spec, database))
    for service in ServiceName:
        children.append(_deployment(owner, spec, service))
        children.append(_service(owner, spec, service))
        if spec.services.of(service).autoscaling is not None:
            children.append(_autoscaler(owner, spec, service))
    if spec.backup.destination is not None:
        children.append(_backup_cron_job(owner, spec))
    children.extend(_network_policies(owner, spec))
    return children


def _database_url_env(owner: Owner, spec: TwitterSystemSpec, database: ServiceName) -> dict[str, Any]:
    source = spec.databases.of(database)
    if source.secret_ref is not None:
        reference = {"name": source.secret_ref.name, "key": source.secret_ref.key}
    else:
        reference = {"name": postgres_name(owner.name, database), "key": "url"}
    return {"name": f"TWITTER_{database.upper()}_DATABASE_URL", "valueFrom": {"secretKeyRef": reference}}


def _service_env(owner: Owner, spec: TwitterSystemSpec, service: ServiceName) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "TWITTER_HOST", "value": "0.0.0.0"},
        {"name": "TWITTER_PORT", "value": str(SERVICE_PORTS[service])},
        {"name": "TWITTER_LOG_FORMAT", "value": "json"},
        # The image's root filesystem is read-only; embedded-mode files would go here.
        {"name": "TWITTER_DATA_DIR", "value": "/tmp/twitter"},
        {
            "name": "TWITTER_SERVICE_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": service_token_secret_name(owner.name), "key": "token"}},
        },
    ]
    for peer in (ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE):
        env.append({"name": f"TWITTER_{peer.upper()}_URL", "value": service_url(owner.name, peer)})
    if service in DATABASE_OWNERS:
        env.append(_database_url_env(owner, spec, service))
    return env


def _restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(resources: Any) -> dict[str, Any]:
    # NOTE: the API server stores quantities in canonical form ("0.5" becomes "500m"). A spec
    # written in another form never matches what is stored, so every pass patches it again.
    if resources is None:
        return {}
    rendered: dict[str, Any] = {}
    if resources.requests:
        rendered["requests"] = {key: str(value) for key, value in resources.requests.items()}
    if resources.limits:
        rendered["limits"] = {key: str(value) for key, value in resources.limits.items()}
    return rendered


def _deployment(owner: Owner, spec: TwitterSystemSpec, service: ServiceName) -> dict[str, Any]:
    name = workload_name(owner.name, service)
    service_spec = spec.services.of(service)
    port = SERVICE_PORTS[service]
    env = _service_env(owner, spec, service)
    volume_mounts = [{"name": "tmp", "mountPath": "/tmp"}]

    container: dict[str, Any] = {
        "name": str(service),
        "image": spec.image.for_service(service),
        "imagePullPolicy": spec.image.pull_policy,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "resources": _resources(service_spec.resources),
        "securityContext": _restricted_container_security(),
        "volumeMounts": volume_mounts,
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(SERVICE_UID),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if service in DATABASE_OWNERS:
        # `migrate` takes a database lock, so replicas starting together apply migrations once.
        # A failed migration keeps the pod in Init, which stops the rollout before it serves.
        pod_spec["initContainers"] = [{
            "name": "migrate",
            "image": spec.image.for_service(service),
            "imagePullPolicy": spec.image.pull_policy,
            "command": ["twitter-system", "migrate", str(service)],
            "env": env,
            "resources": _resources(service_spec.resources),
            "securityContext": _restricted_container_security(),
            "volumeMounts": volume_mounts,
        }]

    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(owner.name, str(service))},
        "template": {
            "metadata": {"labels": {**component_labels(owner.name, str(service)),
                                    "app.kubernetes.io/part-of": "twitter-system"}},
            "spec": pod_spec,
        },
    }
    # With autoscaling on, the HorizontalPodAutoscaler owns the replica count.
    if service_spec.autoscaling is None:
        deployment_spec["replicas"] = service_spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, name, str(service), spec),
        "spec": deployment_spec,
    }


def _service(owner: Owner, spec: TwitterSystemSpec, service: ServiceName) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, workload_name(owner.name, service), str(service), spec),
        "spec": {
            "selector": selector_labels(owner.name, str(service)),
            "ports": [{"name": "http", "port": SERVICE_PORTS[service], "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _autoscaler(owner: Owner, spec: TwitterSystemSpec, service: ServiceName) -> dict[str, Any]:
    autoscaling = spec.services.of(service).autoscaling
    assert autoscaling is not None  # build_children only calls this with autoscaling set
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(owner, workload_name(owner.name, service), str(service), spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": workload_name(owner.name, service)},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization",
                               "averageUtilization": autoscaling.target_cpu_utilization_percentage},
                },
            }],
        },
    }


def _postgres_service(owner: Owner, spec: TwitterSystemSpec, database: ServiceName) -> dict[str, Any]:
    name = postgres_name(owner.name, database)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, f"database-{database}", spec),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(owner.name, f"database-{database}"),
            "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres", "protocol": "TCP"}],
        },
    }


def _postgres_stateful_set(owner: Owner, spec: TwitterSystemSpec, database: ServiceName) -> dict[str, Any]:
    name = postgres_name(owner.name, database)
    postgres = spec.databases.of(database).postgres
    assert postgres is not None  # build_children only calls this for operator-run databases
    component = f"database-{database}"
    ready_check = ["pg_isready", "--host=127.0.0.1", f"--username={POSTGRES_USER}", f"--dbname={database}"]

    claim: dict[str, Any] = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": postgres.storage}}},
    }
    if postgres.storage_class_name:
        claim["spec"]["storageClassName"] = postgres.storage_class_name

    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(owner, name, component, spec),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(owner.name, component)},
            # The claims outlive the StatefulSet on purpose: deleting a TwitterSystem keeps its data.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": {**component_labels(owner.name, component),
                                        "app.kubernetes.io/part-of": "twitter-system"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(POSTGRES_UID),
                    "containers": [{
                        "name": "postgres",
                        "image": postgres.image,
                        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
                        "env": [
                            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
                            {"name": "POSTGRES_DB", "value": str(database)},
                            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": name, "key": "password"}}},
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "readinessProbe": {"exec": {"command": ready_check}, "periodSeconds": 5},
                        "livenessProbe": {"exec": {"command": ready_check}, "periodSeconds": 10,
                                          "failureThreshold": 6},
                        "resources": _resources(postgres.resources),
                        "securityContext": _restricted_container_security(),
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                            {"name": "run", "mountPath": "/var/run/postgresql"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [claim],
        },
    }


def _backup_cron_job(owner: Owner, spec: TwitterSystemSpec) -> dict[str, Any]:
    destination = spec.backup.destination
    assert destination is not None  # build_children only calls this with a destination
    env: list[dict[str, Any]] = [
        {"name": "TWITTER_LOG_FORMAT", "value": "json"},
        {"name": "TWITTER_DATA_DIR", "value": "/tmp/twitter"},
        {"name": "TWITTER_BACKUP_DIR", "value": BACKUP_MOUNT},
        {"name": "TWITTER_BACKUP_KEEP", "value": str(spec.backup.keep_last)},
    ]
    env.extend(_database_url_env(owner, spec, database) for database in BACKED_UP_DATABASES)
    container: dict[str, Any] = {
        "name": "backup",
        # `backup` runs pg_dump, which only the tools image carries (compose/Dockerfile).
        "image": spec.image.for_component(TOOLS_IMAGE),
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["twitter-system", "backup"],
        "env": env,
        "securityContext": _restricted_container_security(),
        "volumeMounts": [{"name": "backups", "mountPath": BACKUP_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if destination.persistent_volume_claim is not None:
        backups_volume: dict[str, Any] = {
            "name": "backups",
            "persistentVolumeClaim": {"claimName": destination.persistent_volume_claim.claim_name},
        }
    else:
        assert destination.s3 is not None  # BackupDestination requires exactly one
        # NOTE: `twitter-system backup` reads no S3 settings yet, so it writes to this scratch folder.
        # The Secret's keys are passed as environment variables for when it does.
        container["envFrom"] = [{"secretRef": {"name": destination.s3.secret_ref.name}}]
        backups_volume = {"name": "backups", "emptyDir": {}}

    component = "backup"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(owner, backup_name(owner.name), component, spec),
        "spec": {
            "schedule": spec.backup.schedule,
            "timeZone": "Etc/UTC",
            "suspend": spec.backup.suspend,
            # The backup command also refuses to run twice at once; Forbid keeps Kubernetes from trying.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": component_labels(owner.name, component)},
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": 3600,
                    "template": {
                        "metadata": {"labels": component_labels(owner.name, component)},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "securityContext": _pod_security(SERVICE_UID),
                            "containers": [container],
                            "volumes": [backups_volume, {"name": "tmp", "emptyDir": {}}],
                        },
                    },
                },
            },
        },
    }


def _pods_of(owner: Owner, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": selector_labels(owner.name, component)}}


def _network_policy(owner: Owner, spec: TwitterSystemSpec, name: str, component: str,
                    policy_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(owner, name, component, spec),
        "spec": policy_spec,
    }


def _network_policies(owner: Owner, spec: TwitterSystemSpec) -> list[dict[str, Any]]:
    """Mirror the Compose networks: only the gateway takes outside traffic, the services reach
    each other, and each database is reachable from its own service (and the backup job) alone."""
    instance_selector = {"matchLabels": {
        "app.kubernetes.io/name": "twitter-system",
        "app.kubernetes.io/instance": owner.name,
    }}
    services = [str(service) for service in ServiceName]
    from_services = [{"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/instance", "operator": "In", "values": [owner.name]},
        {"key": "app.kubernetes.io/component", "operator": "In", "values": services},
    ]}}]

    policies = [
        _network_policy(owner, spec, f"{owner.name}-default-deny", "network", {
            "podSelector": instance_selector,
            "policyTypes": ["Ingress"],
            "ingress": [],
        }),
        _network_policy(owner, spec, f"{owner.name}-gateway-ingress", "gateway", {
            **_pods_of(owner, str(ServiceName.GATEWAY)),
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": SERVICE_PORTS[ServiceName.GATEWAY]}]}],
        }),
    ]
    for service in (ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE):
        policies.append(_network_policy(owner, spec, f"{owner.name}-{service}-ingress", str(service), {
            **_pods_of(owner, str(service)),
            "policyTypes": ["Ingress"],
            "ingress": [{"from": from_services,
                         "ports": [{"protocol": "TCP", "port": SERVICE_PORTS[service]}]}],
        }))
    for database in DATABASE_OWNERS:
        if spec.databases.of(database).postgres is None:
            continue
        allowed = [str(database)] + (["backup"] if database in BACKED_UP_DATABASES else [])
        policies.append(_network_policy(
            owner, spec, f"{postgres_name(owner.name, database)}-ingress", f"database-{database}", {
                **_pods_of(owner, f"database-{database}"),
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"podSelector": {"matchExpressions": [
                        {"key": "app.kubernetes.io/instance", "operator": "In", "values": [owner.name]},
                        {"key": "app.kubernetes.io/component", "operator": "In", "values": allowed},
                    ]}}],
                    "ports": [{"protocol": "TCP", "port": POSTGRES_PORT}],
                }],
            }))
    return policies
