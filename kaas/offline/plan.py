"""Entry points of the offline engine: plan a stack, a spec file, or a spec object.

All three run the project's ``__main__.py`` (:func:`kaas.offline.engine.run_project`),
the program ``pulumi up`` runs; they differ only in where the spec comes from.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from kaas.offline.engine import Plan, run_project
from kaas.spec import ClusterSpec, load_spec_file, load_stack_spec

OFFLINE_SECRET = "offline-placeholder"


def offline_secrets(spec: ClusterSpec) -> dict[str, str]:
    """Stand-ins for the ``kaas:`` config secrets the spec names (alert receivers' credentials).

    There is no Pulumi config store offline; the program reads these exactly as it reads
    the real ones (``require_secret``), so they stay secrets in the plan.
    """
    return {key: f"{OFFLINE_SECRET}:{key}" for key in spec.services.monitoring.alerting.secret_configs()}


def plan_stack(stack: str, *, preview: bool = False) -> Plan:
    """Plan ``stacks/<stack>.yaml`` exactly as ``pulumi up -s <stack>`` (or ``pulumi preview``) would run it."""
    spec = load_stack_spec(stack)  # a bad spec fails here with a SpecError, before anything runs
    return run_project(stack, config=offline_secrets(spec), preview=preview)


def plan_file(path: Path, stack: str | None = None, *, preview: bool = False) -> Plan:
    """Plan an explicit spec file, passed to the program as the ``kaas:spec`` config value.

    The program runs from the project directory (as under ``pulumi up``), so the path
    it gets is absolute.
    """
    spec = load_spec_file(path)
    config = {"spec": str(Path(path).resolve()), **offline_secrets(spec)}
    return run_project(stack or spec.name, config=config, preview=preview)


def plan_spec(spec: ClusterSpec, stack: str | None = None, *, preview: bool = False) -> Plan:
    """Plan an in-memory spec (tests and benchmarks vary specs without keeping files).

    The spec is written to a temporary file and planned like any other spec file; it
    must read back as the same spec.
    """
    with tempfile.TemporaryDirectory(prefix="kaas-spec-") as directory:
        path = Path(directory) / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        if load_spec_file(path) != spec:
            raise ValueError(f"spec {spec.name!r} does not survive its YAML round trip")
        return plan_file(path, stack, preview=preview)
