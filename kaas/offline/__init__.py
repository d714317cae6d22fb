"""The offline plan engine: the real program under Pulumi mocks."""

from kaas.offline.engine import Plan, ProgramExitError, ResourceRecord, Secret, run_plan, run_project
from kaas.offline.plan import plan_file, plan_spec, plan_stack

__all__ = [
    "Plan",
    "ProgramExitError",
    "ResourceRecord",
    "Secret",
    "plan_file",
    "plan_spec",
    "plan_stack",
    "run_plan",
    "run_project",
]
