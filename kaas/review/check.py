"""``kaas check``: the production-readiness rules applied to an offline plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaas.offline.engine import Plan, ResourceRecord, Secret
from kaas.offline.planfile import plain
from kaas.review.policy import RULES, PlanView, Record, Violation, evaluate, is_production


def record_of(resource: ResourceRecord) -> Record:
    return Record(
        urn=resource.urn,
        type=resource.type,
        name=resource.name,
        inputs=plain(resource.inputs, show_secrets=True),
        protect=bool(resource.options.get("protect")),
        retain_on_delete=bool(resource.options.get("retainOnDelete")),
        property_dependencies=resource.property_dependencies,
    )


def view_of(plan: Plan, default_facts: Mapping[str, Any] | None = None) -> PlanView:
    """The plan as the rules see it; secrets in outputs stay recognisable as :class:`Secret`."""
    return PlanView(
        resources=[record_of(r) for r in plan.resources],
        outputs=plan.outputs,
        is_secret=lambda value: isinstance(value, Secret),
        default_facts=default_facts or {},
    )


def check_plan(plan: Plan, default_facts: Mapping[str, Any] | None = None) -> tuple[bool, list[Violation]]:
    """``(mandatory, violations)``: whether violations block (production) and what they are."""
    view = view_of(plan, default_facts)
    return is_production(view), evaluate(view, RULES)
