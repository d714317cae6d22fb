"""Entry points of the offline engine: plan a stack, a spec file, or a spec object."""

from __future__ import annotations

from pathlib import Path

from kaas import program
from kaas.cluster_plan import make_cluster_plan
from kaas.offline.engine import Plan, run_plan
from kaas.rollout import ClusterState
from kaas.rollout.record import load_record, record_path
from kaas.spec import ClusterSpec, load_spec_file, load_stack_spec


def _check_rollout(spec: ClusterSpec, stack: str) -> None:
    """A bad rollout record or a refused edit fails here, before anything is registered."""
    path = record_path(stack)
    make_cluster_plan(spec, load_record(path, spec), str(path))


def plan_stack(stack: str) -> Plan:
    """Plan ``stacks/<stack>.yaml`` exactly as ``pulumi up -s <stack>`` would run it."""
    _check_rollout(load_stack_spec(stack), stack)  # a bad spec fails here, before anything is registered
    return run_plan(program.main, stack=stack)


def plan_file(path: Path, stack: str | None = None) -> Plan:
    """Plan an explicit spec file, passed to the program as the ``kaas:spec`` config value."""
    spec = load_spec_file(path)
    _check_rollout(spec, stack or spec.name)
    return run_plan(program.main, stack=stack or spec.name, config={"spec": str(path)})


def plan_spec(spec: ClusterSpec, stack: str | None = None, recorded: ClusterState | None = None) -> Plan:
    """Plan an in-memory spec (tests and benchmarks vary specs without writing files), from the
    ``recorded`` node revisions (None: a cluster not built yet)."""
    make_cluster_plan(spec, recorded)
    return run_plan(lambda: program.deploy(spec, recorded), stack=stack or spec.name)
