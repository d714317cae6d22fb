"""The offline plan engine: the real program under Pulumi mocks."""

from kaas.offline.engine import Plan, ResourceRecord, Secret, run_plan
from kaas.offline.plan import plan_spec, plan_stack

__all__ = ["Plan", "ResourceRecord", "Secret", "plan_spec", "plan_stack", "run_plan"]
