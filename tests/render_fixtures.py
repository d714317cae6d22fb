"""Every stack (and the service switches) planned offline and its releases rendered by real Helm.

Shared by tests/test_helm_render.py (templates succeed, objects validate, the seeds'
promises hold) and tests/test_monitoring_targets.py (every scrape target resolves). Renders
are cached per process (``tests.helm`` caches ``helm template`` by its inputs too).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from typing import Any

import yaml

from kaas.offline import Plan, ResourceRecord, plan_spec, plan_stack
from kaas.offline.planfile import plain
from kaas.spec import ClusterSpec, load_stack_spec, parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helm import CACHE, chart_archive, helm_bin, render_release
from tests.helpers import merge

RELEASE = "kubernetes:helm.sh/v3:Release"
RENDER_CACHE = CACHE / "renders"
STACKS = tuple(sorted(p.stem for p in STACKS_DIR.glob("*.yaml")))
OPTIONAL = ("monitoring", "metrics_server", "logging", "registry", "backups", "dashboard", "ingress")


def _acme_variant(**override: Any) -> Callable[[], ClusterSpec]:
    def spec() -> ClusterSpec:
        data = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
        return parse_spec(merge(data, {"environment": "demo", **override}), "<acme-prod variant>")

    return spec


# Each service switch off at least once, and the values that depend on another switch
# (Velero's ServiceMonitor needs monitoring; cert-manager without the issuer; Harbor without Trivy).
# Logging needs cert-manager for OpenSearch's certificates (spec rule), so it is off without it.
VARIANT_SPECS: dict[str, Callable[[], ClusterSpec]] = {
    "optional-services-off": _acme_variant(services={name: {"enabled": False} for name in OPTIONAL}),
    "monitoring-off": _acme_variant(services={"monitoring": {"enabled": False}}),
    "no-scanning-no-cert-manager-canal": _acme_variant(
        networking={"cni": "canal"},
        services={
            "registry": {"scanning": False},
            "ingress": {"cert_manager": False},
            "logging": {"enabled": False},
        },
    ),
}
VARIANTS = (*STACKS, *VARIANT_SPECS)


@cache
def spec_of(variant: str) -> ClusterSpec:
    return load_stack_spec(variant) if variant in STACKS else VARIANT_SPECS[variant]()


@cache
def plan_of(variant: str) -> Plan:
    """A stack exactly as ``pulumi up -s <stack>`` runs it; a variant through the same program."""
    return plan_stack(variant) if variant in STACKS else plan_spec(spec_of(variant))


def releases(plan: Plan) -> dict[str, ResourceRecord]:
    return {r.name: r for r in plan.by_type(RELEASE)}


@cache
def _archive_digest(chart: str, version: str) -> str:
    return hashlib.sha256(chart_archive(chart, version).read_bytes()).hexdigest()


@cache
def _helm_digest() -> str:
    return hashlib.sha256(helm_bin().read_bytes()).hexdigest()


@cache
def rendered(variant: str, release: str) -> tuple[dict[str, Any], ...]:
    """The release rendered by real ``helm template``; kept on disk under the exact inputs.

    ``helm template`` is deterministic in the chart package, the values, the release name
    and namespace and the helm binary; the key hashes all of them, so the xdist workers
    (and a re-run) render each distinct release once instead of once per worker.
    """
    record = releases(plan_of(variant))[release]
    inputs = plain(record.inputs, show_secrets=True)
    key_data = {
        "archive": _archive_digest(inputs["chart"], inputs["version"]),
        "values": inputs.get("values") or {},
        "name": inputs.get("name") or record.name,
        "namespace": inputs.get("namespace") or "default",
        "helm": _helm_digest(),
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()
    path = RENDER_CACHE / f"{key}.json"
    if path.exists():
        return tuple(json.loads(path.read_text()))
    objects = json.loads(json.dumps(render_release(record), default=str))
    RENDER_CACHE.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(objects, default=str))
    temporary.replace(path)  # atomic: a parallel worker writes the same bytes
    return tuple(objects)


def release_params() -> list[tuple[str, str]]:
    """(variant, release) for every planned release of every variant."""
    return [(variant, name) for variant in VARIANTS for name in sorted(releases(plan_of(variant)))]


def all_rendered(variant: str) -> list[dict[str, Any]]:
    return [obj for name in sorted(releases(plan_of(variant))) for obj in rendered(variant, name)]
