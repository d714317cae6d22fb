"""Entry points of the offline engine: plan a stack, a spec file, or a spec object.

All three run the project's ``__main__.py`` (:func:`kaas.offline.engine.run_project`),
the program ``pulumi up`` runs; they differ only in where the spec comes from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from kaas.cluster_plan import make_cluster_plan
from kaas.offline.engine import Plan, run_project
from kaas.rollout import ClusterState
from kaas.rollout.record import dump_record, load_record, record_path
from kaas.spec import ClusterSpec, load_spec_file, load_stack_spec
from kaas.spec.loader import stack_spec_path


def _check_rollout(spec: ClusterSpec, path: Path, spec_path: Path) -> None:
    """A bad rollout record or a refused edit fails here with a SpecError, before anything runs."""
    make_cluster_plan(spec, load_record(path, spec), str(path), str(spec_path))


OFFLINE_SECRET = "offline-placeholder"


def offline_secrets(spec: ClusterSpec) -> dict[str, str]:
    """Stand-ins for the ``kaas:`` config secrets the spec names (alert receivers' credentials).

    There is no Pulumi config store offline; the program reads these exactly as it reads
    the real ones (``require_secret``), so they stay secrets in the plan.
    """
    return {key: f"{OFFLINE_SECRET}:{key}" for key in spec.services.monitoring.alerting.secret_configs()}


def plan_stack(stack: str, *, preview: bool = False) -> Plan:
    """Plan ``stacks/<stack>.yaml`` exactly as ``pulumi up -s <stack>`` (or ``pulumi preview``) would run it."""
    spec = load_stack_spec(stack)
    _check_rollout(spec, record_path(stack), stack_spec_path(stack))  # a bad spec fails here, before anything runs
    return run_project(stack, config=offline_secrets(spec), preview=preview)


def plan_file(
    path: Path,
    stack: str | None = None,
    *,
    preview: bool = False,
    record: Path | None = None,
    config: Mapping[str, str] | None = None,
) -> Plan:
    """Plan an explicit spec file, passed to the program as the ``kaas:spec`` config value.

    The rollout record is ``record`` (config ``kaas:rollout``; a missing file: a stack never
    deployed), else the stack's own ``stacks/rollout/<stack>.yaml``. The program runs from
    the project directory (as under ``pulumi up``), so the paths it gets are absolute.
    ``config`` adds configuration of one update (``kaas:heal``).
    """
    spec = load_spec_file(path)
    name = stack or spec.name
    config = {"spec": str(Path(path).resolve()), **offline_secrets(spec), **(config or {})}
    if record is not None:
        config["rollout"] = str(Path(record).resolve())
    _check_rollout(spec, Path(config.get("rollout") or record_path(name)), Path(path))
    return run_project(name, config=config, preview=preview)


def plan_spec(
    spec: ClusterSpec,
    stack: str | None = None,
    *,
    preview: bool = False,
    recorded: ClusterState | None = None,
    config: Mapping[str, str] | None = None,
) -> Plan:
    """Plan an in-memory spec (tests and benchmarks vary specs without keeping files), one
    rollout step further than the ``recorded`` node revisions (None: a cluster not built yet).

    The spec (and the record) are written to temporary files and planned like any other
    spec file; the spec must read back as the same spec.
    """
    with tempfile.TemporaryDirectory(prefix="kaas-spec-") as directory:
        path = Path(directory) / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        if load_spec_file(path) != spec:
            raise ValueError(f"spec {spec.name!r} does not survive its YAML round trip")
        record = Path(directory) / "rollout.yaml"  # absent when nothing is recorded
        if recorded is not None:
            record.write_text(dump_record(spec.name, recorded), encoding="utf-8")
        return plan_file(path, stack, preview=preview, record=record, config=config)
