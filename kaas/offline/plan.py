"""Entry points of the offline engine: plan a stack, a spec file, or a spec object."""

from __future__ import annotations

from pathlib import Path

from kaas import program
from kaas.offline.engine import Plan, run_plan
from kaas.spec import ClusterSpec, load_spec_file, load_stack_spec

OFFLINE_SECRET = "offline-placeholder"


def offline_secrets(spec: ClusterSpec) -> dict[str, str]:
    """Stand-ins for the ``kaas:`` config secrets the spec names (alert receivers' credentials).

    There is no Pulumi config store offline; the program reads these exactly as it reads
    the real ones (``require_secret``), so they stay secrets in the plan.
    """
    return {key: f"{OFFLINE_SECRET}:{key}" for key in spec.services.monitoring.alerting.secret_configs()}


def plan_stack(stack: str) -> Plan:
    """Plan ``stacks/<stack>.yaml`` exactly as ``pulumi up -s <stack>`` would run it."""
    spec = load_stack_spec(stack)  # a bad spec fails here, before anything is registered
    return run_plan(program.main, stack=stack, config=offline_secrets(spec))


def plan_file(path: Path, stack: str | None = None) -> Plan:
    """Plan an explicit spec file, passed to the program as the ``kaas:spec`` config value."""
    spec = load_spec_file(path)
    config = {"spec": str(path), **offline_secrets(spec)}
    return run_plan(program.main, stack=stack or spec.name, config=config)


def plan_spec(spec: ClusterSpec, stack: str | None = None) -> Plan:
    """Plan an in-memory spec (tests and benchmarks vary specs without writing files)."""
    return run_plan(lambda: program.deploy(spec), stack=stack or spec.name, config=offline_secrets(spec))
