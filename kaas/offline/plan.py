"""Entry points of the offline engine: plan a stack, a spec file, or a spec object."""

from __future__ import annotations

from pathlib import Path

from kaas import program
from kaas.offline.engine import Plan, run_plan
from kaas.spec import ClusterSpec, load_spec_file, load_stack_spec


def plan_stack(stack: str) -> Plan:
    """Plan ``stacks/<stack>.yaml`` exactly as ``pulumi up -s <stack>`` would run it."""
    load_stack_spec(stack)  # a bad spec fails here, before anything is registered
    return run_plan(program.main, stack=stack)


def plan_file(path: Path, stack: str | None = None) -> Plan:
    """Plan an explicit spec file, passed to the program as the ``kaas:spec`` config value."""
    spec = load_spec_file(path)
    return run_plan(program.main, stack=stack or spec.name, config={"spec": str(path)})


def plan_spec(spec: ClusterSpec, stack: str | None = None) -> Plan:
    """Plan an in-memory spec (tests and benchmarks vary specs without writing files)."""
    return run_plan(lambda: program.deploy(spec), stack=stack or spec.name)
