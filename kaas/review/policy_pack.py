"""The production-readiness rules as pulumi-policy ``StackValidationPolicy`` objects (``policy/__main__.py``).

Each rule becomes two policies: ``<rule>`` (mandatory), which reports only on
production stacks, and ``<rule>-demo`` (advisory), which reports only on demo
stacks. A stack validation sees every resource, so the environment recorded on
the Cluster component (``kaasPolicy.environment``) is known to every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from kaas.review.policy import RULES, PlanView, Record, Rule, is_production


def record_of(resource: PolicyResource) -> Record:
    return Record(
        urn=resource.urn,
        type=resource.resource_type,
        name=resource.name,
        inputs=dict(resource.props),
        protect=bool(resource.opts.protect),
        retain_on_delete=None,  # the analyzer is not told; `kaas check` verifies it offline
        property_dependencies={key: [d.urn for d in deps] for key, deps in resource.property_dependencies.items()},
    )


def view_of(args: StackValidationArgs) -> PlanView:
    return PlanView(resources=[record_of(r) for r in args.resources])


def _validator(rule: Rule, production: bool) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        view = view_of(args)
        if is_production(view) != production:
            return
        for violation in rule.check(view):
            report_violation(violation.message, violation.urn)

    return validate


def build_policies(rules: Sequence[Rule] = RULES) -> list[StackValidationPolicy]:
    """Two policies per rule the analyzer can evaluate: mandatory for production, advisory for demo."""
    policies = []
    for rule in rules:
        if not rule.in_pack:
            continue
        policies.append(
            StackValidationPolicy(
                name=rule.name,
                description=f"{rule.description} (production stacks)",
                validate=_validator(rule, production=True),
                enforcement_level=EnforcementLevel.MANDATORY,
            )
        )
        policies.append(
            StackValidationPolicy(
                name=f"{rule.name}-demo",
                description=f"{rule.description} (demo stacks: advisory)",
                validate=_validator(rule, production=False),
                enforcement_level=EnforcementLevel.ADVISORY,
            )
        )
    return policies
