"""The structural diff of two offline plans: what `pulumi up` would create, delete, replace or update.

Pure functions over two :class:`~kaas.offline.engine.Plan` objects. Resources are
matched by URN (the URN is what Pulumi matches on). For a resource in both plans,
the inputs are compared key by key after revealing secrets, so a changed secret is
still a change; its values are shown as ``[secret]``. Inputs listed in the
resource's ``ignoreChanges`` are not changes at all (Pulumi keeps the old value).
A change to an input in ``replaceOnChanges``, or to an input the provider is known
to replace on (:data:`FORCES_REPLACEMENT`), makes the step a replacement.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kaas.offline.engine import Plan, ResourceRecord, Secret
from kaas.offline.planfile import SECRET_MASK, plain
from kaas.review.userdata import user_data_diff

ALL_INPUTS = "*"
USER_DATA = "userData"

# Inputs whose change the provider can only apply by replacing the resource
# (ForceNew in the Terraform schemas the Pulumi providers are bridged from).
# Kept small on purpose: the resources this program creates, and the inputs of
# them that a spec change can move. ``*`` means every input forces replacement.
FORCES_REPLACEMENT: dict[str, frozenset[str]] = {
    "openstack:compute/instance:Instance": frozenset(
        {
            "imageName",
            "imageId",
            "flavorName",
            "flavorId",
            "userData",
            "availabilityZone",
            "keyPair",
            "blockDevices",
            "schedulerHints",
            "configDrive",
            "personalities",
            "networks",
        }
    ),
    "openstack:compute/serverGroup:ServerGroup": frozenset({"name", "policies", "rules"}),
    "openstack:networking/port:Port": frozenset({"networkId", "tenantId"}),
    "openstack:networking/network:Network": frozenset({"tenantId", "availabilityZoneHints"}),
    "openstack:networking/subnet:Subnet": frozenset({"networkId", "cidr", "ipVersion", "prefixLength", "subnetpoolId"}),
    "openstack:networking/router:Router": frozenset({"tenantId", "distributed", "availabilityZoneHints"}),
    "openstack:networking/routerInterface:RouterInterface": frozenset({ALL_INPUTS}),
    "openstack:networking/secGroup:SecGroup": frozenset({"tenantId"}),
    "openstack:networking/secGroupRule:SecGroupRule": frozenset({ALL_INPUTS}),
    "openstack:networking/floatingIp:FloatingIp": frozenset({"pool", "address", "subnetId", "tenantId"}),
    "openstack:networking/floatingIpAssociate:FloatingIpAssociate": frozenset({"floatingIp"}),
    "openstack:loadbalancer/loadBalancer:LoadBalancer": frozenset(
        {"vipSubnetId", "vipNetworkId", "vipPortId", "vipAddress", "loadbalancerProvider", "availabilityZone"}
    ),
    "openstack:loadbalancer/listener:Listener": frozenset({"protocol", "protocolPort", "loadbalancerId"}),
    "openstack:loadbalancer/pool:Pool": frozenset({"protocol", "listenerId", "loadbalancerId"}),
    "openstack:loadbalancer/member:Member": frozenset({"poolId", "address", "protocolPort", "subnetId"}),
    "openstack:loadbalancer/monitor:Monitor": frozenset({"poolId", "type"}),
    "openstack:objectstorage/container:Container": frozenset({"name", "storagePolicy"}),
    "openstack:dns/recordSet:RecordSet": frozenset({"zoneId", "name", "type"}),
    "openstack:dns/zone:Zone": frozenset({"name", "type"}),
    "openstack:identity/role:Role": frozenset({"name", "domainId"}),
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3": frozenset({ALL_INPUTS}),
    "openstack:identity/applicationCredential:ApplicationCredential": frozenset({ALL_INPUTS}),
    "tls:index/privateKey:PrivateKey": frozenset({ALL_INPUTS}),
    "tls:index/selfSignedCert:SelfSignedCert": frozenset({ALL_INPUTS}),
    "tls:index/locallySignedCert:LocallySignedCert": frozenset({ALL_INPUTS}),
    "tls:index/certRequest:CertRequest": frozenset({ALL_INPUTS}),
    "random:index/randomPassword:RandomPassword": frozenset({ALL_INPUTS}),
    "random:index/randomString:RandomString": frozenset({ALL_INPUTS}),
    "random:index/randomId:RandomId": frozenset({ALL_INPUTS}),
    "kubernetes:helm.sh/v3:Release": frozenset({"name", "namespace"}),
}


class Operation(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    REPLACE = "replace"
    UPDATE = "update"


SYMBOLS = {Operation.CREATE: "+", Operation.DELETE: "-", Operation.REPLACE: "+-", Operation.UPDATE: "~"}


@dataclass(frozen=True)
class InputChange:
    """One top-level input whose (revealed) value differs between the plans."""

    key: str
    old: Any
    new: Any
    secret: bool
    forces_replacement: bool
    # For user data: the unified diff of the rendered cloud-config, secret values masked.
    detail: tuple[str, ...] = ()

    def shown(self, value: Any) -> str:
        if self.secret:
            return SECRET_MASK
        return _short(value)


@dataclass(frozen=True)
class ResourceDiff:
    urn: str
    type: str
    name: str
    operation: Operation
    changes: tuple[InputChange, ...] = ()
    # From the deployed (old) resource: `pulumi up` refuses to delete or replace a protected one.
    protected: bool = False
    # A deleted resource with retainOnDelete stays in the cloud, only leaving the stack.
    retained: bool = False
    # A replacement that deletes the old resource before creating the new one (a gap).
    delete_first: bool = False

    def notes(self) -> list[str]:
        notes = []
        if self.protected and self.operation in (Operation.DELETE, Operation.REPLACE):
            notes.append(f"protected: pulumi up refuses to {self.operation.value} it")
        if self.retained and self.operation is Operation.DELETE:
            notes.append("retained: stays in the cloud")
        if self.delete_first and self.operation is Operation.REPLACE:
            notes.append("deleted before its replacement is created")
        return notes


@dataclass(frozen=True)
class OutputChange:
    """One stack output value (a path into nested outputs, e.g. ``layout.workers.count``) that differs."""

    path: str
    old: Any
    new: Any
    secret: bool

    @property
    def symbol(self) -> str:
        return "+" if self.old is None else "-" if self.new is None else "~"

    def shown(self, value: Any) -> str:
        return SECRET_MASK if self.secret else _short(value)


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    resources: tuple[ResourceDiff, ...]
    base_missing: bool = False
    outputs: tuple[OutputChange, ...] = ()
    # The rollout step the new plan performs (kaas.rollout.render.describe_step) and the
    # invariants it breaks (kaas.rollout.invariants), rebuilt from the plan itself.
    rollout: tuple[str, ...] = ()
    rollout_violations: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.resources or self.outputs)

    def counts(self) -> dict[Operation, int]:
        counted = Counter(r.operation for r in self.resources)
        return {op: counted.get(op, 0) for op in Operation}

    def of(self, operation: Operation) -> list[ResourceDiff]:
        return [r for r in self.resources if r.operation is operation]


def contains_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_secret(v) for v in value)
    return False


def top_level_key(path: str) -> str:
    """``networks[0].fixedIpV4`` -> ``networks``; ignore/replace paths are matched on their first key."""
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


def replacement_keys(record: ResourceRecord) -> frozenset[str]:
    """Inputs whose change replaces ``record``: its ``replaceOnChanges`` plus the provider's known ones."""
    listed = {top_level_key(p) for p in record.options.get("replaceOnChanges") or []}
    return frozenset(listed) | FORCES_REPLACEMENT.get(record.type, frozenset())


def ignored_keys(record: ResourceRecord) -> frozenset[str]:
    return frozenset(top_level_key(p) for p in record.options.get("ignoreChanges") or [])


def input_changes(old: ResourceRecord, new: ResourceRecord) -> list[InputChange]:
    """The changed inputs of one resource, ignoring what the new ``ignoreChanges`` lists (as Pulumi does)."""
    ignored = ignored_keys(new)
    replacing = replacement_keys(new) if new.custom else frozenset()
    changes = []
    for key in sorted(set(old.inputs) | set(new.inputs)):
        if key in ignored or key.startswith("__"):
            continue
        before, after = old.inputs.get(key), new.inputs.get(key)
        if plain(before, show_secrets=True) == plain(after, show_secrets=True):
            continue
        detail: tuple[str, ...] = ()
        old_text, new_text = plain(before, show_secrets=True), plain(after, show_secrets=True)
        if key == USER_DATA and isinstance(old_text, str) and isinstance(new_text, str):
            detail = tuple(user_data_diff(old_text, new_text, new.name))
        changes.append(
            InputChange(
                key=key,
                old=plain(before, show_secrets=True),
                new=plain(after, show_secrets=True),
                secret=contains_secret(before) or contains_secret(after),
                forces_replacement=ALL_INPUTS in replacing or key in replacing,
                detail=detail,
            )
        )
    return changes


def output_changes(old: Any, new: Any, path: str = "") -> list[OutputChange]:
    """Changed stack outputs, down to the leaves of nested objects (lists compare whole)."""
    if isinstance(old, dict) and isinstance(new, dict):  # a secret object is a Secret, compared whole
        changes: list[OutputChange] = []
        for key in sorted(set(old) | set(new)):
            changes += output_changes(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return changes
    if plain(old, show_secrets=True) == plain(new, show_secrets=True):
        return []
    secret = contains_secret(old) or contains_secret(new)
    return [OutputChange(path, plain(old, show_secrets=True), plain(new, show_secrets=True), secret)]


def diff_plans(old: Plan | None, new: Plan | None, stack: str | None = None) -> PlanDiff:
    """What applying ``new`` over a stack deployed from ``old`` would do (``None``: the stack does not exist)."""
    old_by_urn = {r.urn: r for r in (old.resources if old else []) if r.type != "pulumi:pulumi:Stack"}
    new_by_urn = {r.urn: r for r in (new.resources if new else []) if r.type != "pulumi:pulumi:Stack"}
    diffs: list[ResourceDiff] = []
    for urn in sorted(set(old_by_urn) | set(new_by_urn)):
        before, after = old_by_urn.get(urn), new_by_urn.get(urn)
        if before is None and after is not None:
            diffs.append(ResourceDiff(urn, after.type, after.name, Operation.CREATE))
        elif after is None and before is not None:
            diffs.append(
                ResourceDiff(
                    urn,
                    before.type,
                    before.name,
                    Operation.DELETE,
                    protected=bool(before.options.get("protect")),
                    retained=bool(before.options.get("retainOnDelete")),
                )
            )
        elif before is not None and after is not None:
            changes = input_changes(before, after)
            if changes:
                replace = any(c.forces_replacement for c in changes)
                operation = Operation.REPLACE if replace else Operation.UPDATE
                diffs.append(
                    ResourceDiff(
                        urn,
                        after.type,
                        after.name,
                        operation,
                        tuple(changes),
                        protected=bool(before.options.get("protect")),
                        delete_first=bool(after.options.get("deleteBeforeReplace")),
                    )
                )
    name = stack or (new.stack if new else old.stack if old else "?")
    outputs = output_changes(old.outputs if old else {}, new.outputs if new else {})
    rollout, violations = rollout_section(new) if new is not None else ((), ())
    return PlanDiff(
        stack=name,
        resources=tuple(diffs),
        base_missing=old is None,
        outputs=tuple(outputs),
        rollout=rollout,
        rollout_violations=violations,
    )


def rollout_section(plan: Plan) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(lines, violations)``: the rollout step ``plan`` performs, for people, and the invariants it breaks."""
    from kaas.review.check import view_of
    from kaas.review.policy import planned_step
    from kaas.rollout import check_step
    from kaas.rollout.render import describe_step

    planned = planned_step(view_of(plan))
    if planned is None:
        return (), ()
    desired, step = planned
    addresses = {
        r.name.removesuffix("-port"): str(plain(r.inputs.get("fixedIps"), show_secrets=True)[0].get("ipAddress"))
        for r in plan.by_type("openstack:networking/port:Port")
        if r.inputs.get("fixedIps")
    }
    lines = describe_step(step, addresses)
    if step.bootstrap:
        lines = [*lines, "no rollout record yet: after pulumi up, `python -m kaas rollout record` and commit it"]
    return tuple(lines), tuple(str(v) for v in check_step(desired, step))


# ---------------------------------------------------------------------------
# Rendering.

_MAX_VALUE = 120
_COLLAPSE_OVER = 15  # details of a longer diff are collapsed in markdown


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text.replace("\n", "\\n")
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _summary(diff: PlanDiff) -> str:
    counts = diff.counts()
    parts = [f"{counts[op]} to {op.value}" for op in Operation if counts[op]]
    if diff.outputs:
        parts.append(f"{len(diff.outputs)} output(s) changed")
    return ", ".join(parts) if parts else "no changes"


def _resource_line(resource: ResourceDiff) -> str:
    notes = resource.notes()
    return f"{resource.type}  {resource.name}" + (f"  ({'; '.join(notes)})" if notes else "")


def _output_line(change: OutputChange) -> str:
    if change.old is None:
        return f"{change.symbol} {change.path}: {change.shown(change.new)}"
    if change.new is None:
        return f"{change.symbol} {change.path}"
    return f"{change.symbol} {change.path}: {change.shown(change.old)} => {change.shown(change.new)}"


def leaf_changes(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """``(path, old, new)`` for each differing leaf: ``blockDevices[0].uuid`` rather than the whole list."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            leaf
            for key in sorted(set(old) | set(new))
            for leaf in leaf_changes(old.get(key), new.get(key), f"{path}.{key}")
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            leaf for i, (a, b) in enumerate(zip(old, new, strict=True)) for leaf in leaf_changes(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [(path, old, new)]


def _change_line(change: InputChange) -> str:
    marker = " (forces replacement)" if change.forces_replacement else ""
    leaves = [] if change.secret else leaf_changes(change.old, change.new, change.key)
    if leaves and len(leaves) <= 3 and leaves != [(change.key, change.old, change.new)]:
        shown = "; ".join(f"{path}: {_short(a)} => {_short(b)}" for path, a, b in leaves)
        return f"{shown}{marker}"
    return f"{change.key}: {change.shown(change.old)} => {change.shown(change.new)}{marker}"


def render_text(diff: PlanDiff) -> str:
    lines = [f"Stack {diff.stack}: {_summary(diff)}"]
    if diff.base_missing:
        lines.append("  (the stack does not exist at the base revision: everything is created)")
    for resource in diff.resources:
        lines.append(f"  {SYMBOLS[resource.operation]:<2} {resource.operation.value:<7} {_resource_line(resource)}")
        for change in resource.changes:
            lines.append(f"        {_change_line(change)}")
            lines.extend(f"          {line}" for line in change.detail)
    if diff.outputs:
        lines.append("  Outputs:")
        lines.extend(f"    {_output_line(c)}" for c in diff.outputs)
    if diff.rollout and diff.has_changes:
        lines.append("  Rollout (this pulumi up):")
        lines.extend(f"    {line}" for line in diff.rollout)
    lines.extend(f"  UNSAFE: {violation}" for violation in diff.rollout_violations)
    return "\n".join(lines)


def render_markdown(diff: PlanDiff) -> str:
    """A PR comment: a count per operation, then the details (collapsed when long)."""
    counts = diff.counts()
    lines = [f"### Offline diff of stack `{diff.stack}`", ""]
    if diff.base_missing:
        lines += ["The stack does not exist at the base revision: every resource is created.", ""]
    if diff.rollout_violations:
        lines += [f"**Unsafe day-2 step:** {v}" for v in diff.rollout_violations] + [""]
    if diff.rollout and diff.has_changes:
        lines += ["**Rollout, this `pulumi up`:**", "", *(f"- {line}" for line in diff.rollout), ""]
    if not diff.has_changes:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += ["| Operation | Resources |", "| --- | ---: |"]
    lines += [f"| {op.value} | {counts[op]} |" for op in Operation if counts[op]]
    if diff.outputs:
        lines.append(f"| outputs changed | {len(diff.outputs)} |")
    lines.append("")
    protected = [r for r in diff.resources if r.protected and r.operation in (Operation.DELETE, Operation.REPLACE)]
    if protected:
        lines += [
            f"**{len(protected)} protected resource(s) would be deleted or replaced: `pulumi up` refuses.**",
            "",
        ]
    details: list[str] = []
    for op in (Operation.REPLACE, Operation.DELETE, Operation.UPDATE, Operation.CREATE):
        for resource in diff.of(op):
            notes = resource.notes()
            suffix = f" ({'; '.join(notes)})" if notes else ""
            details.append(f"- **{op.value}** `{resource.type}` `{resource.name}`{suffix}")
            for change in resource.changes:
                details.append(f"  - `{_change_line(change)}`")
                if change.detail:
                    details += ["", "    ```diff", *(f"    {line}" for line in change.detail), "    ```", ""]
    if diff.outputs:
        details.append("- **outputs**")
        details.extend(f"  - `{_output_line(c)}`" for c in diff.outputs)
    if len(details) > _COLLAPSE_OVER:
        lines += ["<details><summary>Details</summary>", "", *details, "", "</details>"]
    else:
        lines += details
    return "\n".join(lines) + "\n"
