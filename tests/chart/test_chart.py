"""The Helm chart: rendering, lint, schema validation, RBAC and pod security."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from tests.chart.chart import (
    CHART,
    NAMESPACE,
    NEWEST_KUBERNETES,
    OLDEST_KUBERNETES,
    apply_defaults,
    crd,
    crd_json_schema,
    examples,
    production_values,
    render,
    render_notes,
)
from twitter_operator import manifests as operator_manifests
from twitter_operator.spec import parse_spec

KUBERNETES_VERSIONS = [OLDEST_KUBERNETES, NEWEST_KUBERNETES]
VALUE_SETS = {"default": {}, "production": production_values()}


def by_kind(rendered: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [manifest for manifest in rendered if manifest["kind"] == kind]


def operator_children(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The children the operator would create for each rendered TwitterSystem."""
    children = []
    for system in by_kind(rendered, "TwitterSystem"):
        owner = operator_manifests.Owner(name=system["metadata"]["name"], namespace=NAMESPACE, uid="uid-1")
        spec = parse_spec(system["spec"])
        children.extend(operator_manifests.build_children(owner, spec))
        children.extend(operator_manifests.build_generated_secrets(owner, spec))
    return children


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_chart_passes_strict_lint(values_name: str) -> None:
    for kube_version in KUBERNETES_VERSIONS:
        report = helm.lint(CHART, VALUE_SETS[values_name], strict=True, namespace=NAMESPACE,
                           kube_version=f"v{kube_version}")

        assert report["errors"] == []
        # Severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors.
        assert [message for message in report["messages"] if message["severity"] >= 2] == []


@pytest.mark.parametrize("values_name", VALUE_SETS)
@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
def test_manifests_validate_strictly(values_name: str, kube_version: str) -> None:
    rendered = render(VALUE_SETS[values_name])
    builtin = [manifest for manifest in rendered if manifest["kind"] != "TwitterSystem"]
    builtin += [crd()] + operator_children(rendered)

    for manifest in builtin:
        try:
            kubernetes_validate.validate(manifest, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']} is invalid for Kubernetes "
                        f"{kube_version}: {'.'.join(str(part) for part in error.path)}: {error.message}")


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_rendered_system_matches_crd(values_name: str) -> None:
    systems = by_kind(render(VALUE_SETS[values_name]), "TwitterSystem")

    assert len(systems) == 1
    jsonschema.validate(systems[0], crd_json_schema(), format_checker=jsonschema.FormatChecker())
    # The schema cannot check cron syntax or minReplicas against maxReplicas; the operator can.
    parse_spec(systems[0]["spec"])


@pytest.mark.parametrize("example", examples(), ids=lambda example: example["metadata"]["name"] + "-example")
def test_examples_match_crd(example: dict[str, Any]) -> None:
    jsonschema.validate(example, crd_json_schema(), format_checker=jsonschema.FormatChecker())
    parse_spec(apply_defaults(crd_json_schema()["properties"]["spec"], example["spec"]))


@pytest.mark.parametrize(("spec", "field"), [
    ({"services": {"post": {"replicas": -1}}}, "replicas"),
    ({"services": {"post": {"replicas": 2, "extra": True}}}, "extra"),
    ({"services": {"post": {"autoscaling": {"minReplicas": 2}}}}, "maxReplicas"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"databases": {"post": {"postgres": {}, "secretRef": {"name": "x"}}}}, "oneOf"),
    ({"backup": {"schedule": "*/5 * * *"}}, "schedule"),
    ({"backup": {"keepLast": 0}}, "keepLast"),
    ({"backup": {"destination": {"persistentVolumeClaim": {}}}}, "claimName"),
    ({"restartOnFault": {"unreadySeconds": 5}}, "unreadySeconds"),
    ({"services": {"gateway": {"resources": {"limits": {"memory": "lots"}}}}}, "memory"),
])
def test_crd_rejects_bad_spec(spec: dict[str, Any], field: str) -> None:
    resource = {"apiVersion": "twittersystem.dev/v1alpha1", "kind": "TwitterSystem",
                "metadata": {"name": "bad"}, "spec": spec}

    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(resource, crd_json_schema(), format_checker=jsonschema.FormatChecker())

    assert field in str(raised.value)


def test_crd_defaults_match_operator() -> None:
    spec_schema = crd_json_schema()["properties"]["spec"]

    defaulted = apply_defaults(spec_schema, {})

    assert parse_spec(defaulted) == parse_spec({})


def test_rbac_has_no_wildcards() -> None:
    for values in VALUE_SETS.values():
        roles = [manifest for manifest in render(values) if manifest["kind"] in {"Role", "ClusterRole"}]
        assert len(roles) == 1
        for rule in roles[0]["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), rule
            assert not rule.get("nonResourceURLs"), rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_rbac_scope_follows_values() -> None:
    namespaced = {manifest["kind"] for manifest in render({})}
    cluster = {manifest["kind"] for manifest in render({"operator": {"scope": "cluster"}})}

    assert {"Role", "RoleBinding"} <= namespaced
    assert not {"ClusterRole", "ClusterRoleBinding"} & namespaced
    assert {"ClusterRole", "ClusterRoleBinding"} <= cluster
    assert not {"Role", "RoleBinding"} & cluster


def _pod_specs(workloads: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for workload in workloads:
        template = workload["spec"].get("template") or workload["spec"]["jobTemplate"]["spec"]["template"]
        specs.append((f"{workload['kind']} {workload['metadata']['name']}", template["spec"]))
    return specs


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_every_pod_is_hardened(values_name: str) -> None:
    rendered = render(VALUE_SETS[values_name])
    workloads = [manifest for manifest in rendered + operator_children(rendered)
                 if manifest["kind"] in {"Deployment", "StatefulSet", "CronJob"}]
    assert len(by_kind(workloads, "Deployment")) == 5  # the operator and four services

    for name, pod_spec in _pod_specs(workloads):
        assert pod_spec["securityContext"]["runAsNonRoot"] is True, name
        assert pod_spec["securityContext"].get("runAsUser", 1) != 0, name
        for container in pod_spec["containers"] + pod_spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, f"{name} {container['name']}"
            assert context["allowPrivilegeEscalation"] is False, f"{name} {container['name']}"
            assert context["capabilities"]["drop"] == ["ALL"], f"{name} {container['name']}"


def test_operator_runs_once_with_recreate() -> None:
    deployment = by_kind(render({}), "Deployment")[0]

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert probe["httpGet"]["path"] == "/healthz"


def test_every_object_has_standard_labels() -> None:
    for manifest in render(production_values()):
        labels = manifest["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, f"{manifest['kind']} {manifest['metadata']['name']} lacks {key}"


def test_default_system_can_be_switched_off() -> None:
    rendered = render({"twitterSystem": {"enabled": False}})

    assert by_kind(rendered, "TwitterSystem") == []
    assert by_kind(rendered, "PersistentVolumeClaim") == []
    assert "No TwitterSystem was created" in render_notes({"twitterSystem": {"enabled": False}})


def test_default_system_backs_up_to_kept_claim() -> None:
    rendered = render({})
    system = by_kind(rendered, "TwitterSystem")[0]
    claim = by_kind(rendered, "PersistentVolumeClaim")[0]

    assert system["spec"]["backup"]["schedule"] == "0 */4 * * *"
    assert system["spec"]["backup"]["destination"] == {
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_production_values_keep_their_destination() -> None:
    rendered = render(production_values())
    system = by_kind(rendered, "TwitterSystem")[0]

    assert system["metadata"]["name"] == "social"
    assert system["spec"]["backup"]["destination"] == {"s3": {"secretRef": {"name": "twitter-backup-s3"}}}
    assert by_kind(rendered, "PersistentVolumeClaim") == []


@pytest.mark.parametrize("values", [
    {"operator": {"scope": "everywhere"}},
    {"operator": {"resyncSeconds": 0}},
    {"unknownKey": 1},
    {"twitterSystem": {"backupVolume": {"size": "big"}}},
    {"twitterSystem": {"spec": {"backup": {"schedule": "hourly"}}}},
])
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


def test_operator_network_policy_admits_nothing() -> None:
    policy = by_kind(render({}), "NetworkPolicy")[0]

    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = sorted(port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"])
    assert egress_ports == [53, 53, 443, 6443]
