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

from kaas.offline.engine import UNKNOWN, Plan, ResourceRecord, Secret

SECRET_MASK = "[secret]"
ALL_INPUTS = "*"

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


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    resources: tuple[ResourceDiff, ...]
    base_missing: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(self.resources)

    def counts(self) -> dict[Operation, int]:
        counted = Counter(r.operation for r in self.resources)
        return {op: counted.get(op, 0) for op in Operation}

    def of(self, operation: Operation) -> list[ResourceDiff]:
        return [r for r in self.resources if r.operation is operation]


def reveal(value: Any) -> Any:
    """The value with every secret unwrapped (what the provider would receive)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if value is UNKNOWN:
        return "[unknown]"
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


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
        if reveal(before) == reveal(after):
            continue
        changes.append(
            InputChange(
                key=key,
                old=reveal(before),
                new=reveal(after),
                secret=contains_secret(before) or contains_secret(after),
                forces_replacement=ALL_INPUTS in replacing or key in replacing,
            )
        )
    return changes


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
            diffs.append(ResourceDiff(urn, before.type, before.name, Operation.DELETE))
        elif before is not None and after is not None:
            changes = input_changes(before, after)
            if changes:
                replace = any(c.forces_replacement for c in changes)
                operation = Operation.REPLACE if replace else Operation.UPDATE
                diffs.append(ResourceDiff(urn, after.type, after.name, operation, tuple(changes)))
    name = stack or (new.stack if new else old.stack if old else "?")
    return PlanDiff(stack=name, resources=tuple(diffs), base_missing=old is None)


# ---------------------------------------------------------------------------
# Plans read back from `python -m kaas plan --json` (how the base revision is planned).


def _with_secrets(revealed: Any, masked: Any) -> Any:
    """Rebuild recorded values: where the masked document says ``[secret]``, the revealed value was a secret."""
    if masked == SECRET_MASK and revealed != SECRET_MASK:
        return Secret(revealed)
    if isinstance(revealed, dict) and isinstance(masked, dict):
        return {k: _with_secrets(v, masked.get(k)) for k, v in revealed.items()}
    if isinstance(revealed, list) and isinstance(masked, list) and len(revealed) == len(masked):
        return [_with_secrets(r, m) for r, m in zip(revealed, masked, strict=True)]
    return revealed


def plan_from_json(revealed: dict[str, Any], masked: dict[str, Any] | None = None) -> Plan:
    """A :class:`Plan` from ``kaas plan --json --show-secrets`` (and, to know what was secret, ``--json``)."""
    masked_by_urn = {r["urn"]: r for r in (masked or {}).get("resources", [])}
    records = []
    for data in revealed["resources"]:
        masked_inputs = masked_by_urn.get(data["urn"], {}).get("inputs", data["inputs"])
        records.append(
            ResourceRecord(
                urn=data["urn"],
                type=data["type"],
                name=data["name"],
                parent=data.get("parent"),
                custom=bool(data.get("custom", True)),
                inputs=_with_secrets(data["inputs"], masked_inputs),
                dependencies=list(data.get("dependencies", [])),
                property_dependencies=dict(data.get("propertyDependencies", {})),
                options=dict(data.get("options", {})),
            )
        )
    outputs = _with_secrets(revealed.get("outputs", {}), (masked or revealed).get("outputs", {}))
    return Plan(stack=revealed.get("stack", "?"), resources=records, outputs=outputs)


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
    return ", ".join(parts) if parts else "no changes"


def _change_line(change: InputChange) -> str:
    marker = " (forces replacement)" if change.forces_replacement else ""
    return f"{change.key}: {change.shown(change.old)} => {change.shown(change.new)}{marker}"


def render_text(diff: PlanDiff) -> str:
    lines = [f"Stack {diff.stack}: {_summary(diff)}"]
    if diff.base_missing:
        lines.append("  (the stack does not exist at the base revision: everything is created)")
    for resource in diff.resources:
        lines.append(
            f"  {SYMBOLS[resource.operation]:<2} {resource.operation.value:<7} {resource.type}  {resource.name}"
        )
        lines.extend(f"        {_change_line(c)}" for c in resource.changes)
    return "\n".join(lines)


def render_markdown(diff: PlanDiff) -> str:
    """A PR comment: a count per operation, then the details (collapsed when long)."""
    counts = diff.counts()
    lines = [f"### Offline diff of stack `{diff.stack}`", ""]
    if diff.base_missing:
        lines += ["The stack does not exist at the base revision: every resource is created.", ""]
    if not diff.has_changes:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += ["| Operation | Resources |", "| --- | ---: |"]
    lines += [f"| {op.value} | {counts[op]} |" for op in Operation if counts[op]]
    lines.append("")
    details: list[str] = []
    for op in (Operation.REPLACE, Operation.DELETE, Operation.UPDATE, Operation.CREATE):
        for resource in diff.of(op):
            details.append(f"- **{op.value}** `{resource.type}` `{resource.name}`")
            details.extend(f"  - `{_change_line(c)}`" for c in resource.changes)
    if len(details) > _COLLAPSE_OVER:
        lines += ["<details><summary>Details</summary>", "", *details, "", "</details>"]
    else:
        lines += details
    return "\n".join(lines) + "\n"
