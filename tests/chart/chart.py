"""Render the chart with Helm's own library and turn the CRD into a JSON Schema.

helm-python-sdk binds Helm's Go SDK through a bundled shared library, so no ``helm``
binary or Go toolchain is needed. Helm does not render ``crds/``, so the CRD is read
from disk.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "twitter-system"
CRD_FILE = CHART / "crds" / "twittersystems.twittersystem.dev.yaml"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
NAMESPACE = "twitter"

# The oldest and newest Kubernetes releases the chart supports (Chart.yaml's kubeVersion).
OLDEST_KUBERNETES = "1.30.0"
NEWEST_KUBERNETES = "1.37.0"


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the templates as ``helm install`` would, and return every manifest."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name="twitter-system", namespace=NAMESPACE, is_install=True)
    manifests = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(document for document in yaml.safe_load_all(text) if document)
    return manifests


def render_notes(values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name="twitter-system", namespace=NAMESPACE, is_install=True)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_FILE.read_text())


def examples() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in EXAMPLES]


def crd_json_schema() -> dict[str, Any]:
    """The CRD's schema as strict JSON Schema: unknown fields are errors, as with
    ``kubectl apply --validate=strict``, instead of being pruned silently."""
    version = crd()["spec"]["versions"][0]
    return _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    converted = {key: _strict(value) for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        converted["additionalProperties"] = False
    return converted


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in the schema's defaults the way the API server does before storing an object."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        return value
    filled = dict(value)
    for name, property_schema in (schema.get("properties") or {}).items():
        if name not in filled and "default" in property_schema:
            filled[name] = copy.deepcopy(property_schema["default"])
        if name in filled:
            filled[name] = apply_defaults(property_schema, filled[name])
    return filled
