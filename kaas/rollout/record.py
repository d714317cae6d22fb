"""The rollout record (``stacks/rollout/<stack>.yaml``) and the spec's desired revisions.

The record says which revision every node of a stack runs. It is written by
``python -m kaas rollout record`` after a successful ``pulumi up`` (from that update's
``nodeRevisions`` output), committed beside the spec and reviewed like it. The program
reads it to plan the next step. No record means the stack has never been deployed: the
first ``pulumi up`` builds every node at the spec's revision.

::

    cluster: acme-prod
    nodes:
      acme-prod-etcd-0: {image: ubuntu-24.04, version: 3.6.5, template: 1, flavor: kaas.etcd, key_pair: acme-ops}
      acme-prod-worker-3: {image: ..., phase: leaving}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kaas import versions
from kaas.openstack.addressing import tier_capacity
from kaas.rollout.model import (
    TIER_ORDER,
    ClusterState,
    Desired,
    Node,
    Phase,
    Revision,
    Tier,
    TierTarget,
    revision_to_data,
)
from kaas.spec.loader import STACKS_DIR, SpecError, problems_from_validation
from kaas.spec.models import ClusterSpec, NodeTierSpec

RECORD_DIR = STACKS_DIR / "rollout"
PRODUCTION_MIN_ETCD = 3


def record_path(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / "rollout" / f"{stack}.yaml"


def _tier_spec(spec: ClusterSpec, tier: Tier) -> NodeTierSpec:
    tiers: dict[Tier, NodeTierSpec] = {Tier.ETCD: spec.etcd, Tier.MASTER: spec.masters, Tier.WORKER: spec.workers}
    return tiers[tier]


# The tiers whose user data carries certificates the program issues from the etcd CAs
# (kaas.bootstrap.pki): etcd members (serving and peer) and masters (the API server's etcd client).
CERTIFICATE_TIERS = (Tier.ETCD, Tier.MASTER)


def desired_revision(spec: ClusterSpec, tier: Tier) -> Revision:
    """The revision the spec wants every node of ``tier`` to run."""
    settings = _tier_spec(spec, tier)
    return Revision(
        image=spec.openstack.image,
        version=(spec.versions.etcd if tier is Tier.ETCD else spec.versions.kubernetes).lstrip("v"),
        template=versions.BOOTSTRAP_TEMPLATE,
        flavor=settings.flavor.name,
        key_pair=spec.openstack.key_pair,
        volume_gb=settings.boot_volume_gb,
        certificates=spec.security.etcd_certificates_generation if tier in CERTIFICATE_TIERS else 1,
    )


def desired_from_spec(spec: ClusterSpec) -> Desired:
    """What the spec wants, as the planner sees it."""

    def target(tier: Tier) -> TierTarget:
        settings = _tier_spec(spec, tier)
        return TierTarget(
            tier,
            settings.count,
            desired_revision(spec, tier),
            max_surge=spec.workers.max_surge,
            max_unavailable=spec.workers.max_unavailable,
            min_count=PRODUCTION_MIN_ETCD if tier is Tier.ETCD and spec.is_production else 1,
        )

    return Desired(
        spec.name, target(Tier.ETCD), target(Tier.MASTER), target(Tier.WORKER), production=spec.is_production
    )


class _NodeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(min_length=1)
    version: str = Field(pattern=r"^v?\d+\.\d+\.\d+$")
    template: int = Field(ge=1)
    flavor: str = Field(min_length=1)
    key_pair: str | None = None
    volume_gb: int | None = Field(default=None, ge=10)
    certificates: int = Field(default=1, ge=1)
    phase: Phase = Phase.RUNNING


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(min_length=1)
    nodes: dict[str, _NodeRecord] = Field(min_length=1)


def parse_record(data: object, spec: ClusterSpec, source: str) -> ClusterState:
    """Validate a parsed record against the spec it belongs to; SpecError names the field."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(source, [f"(document): must be a rollout record (cluster, nodes); the document is {kind}"])
    try:
        record = _Record.model_validate(data)
    except ValidationError as error:
        raise SpecError(source, problems_from_validation(error)) from None
    if record.cluster != spec.name:
        raise SpecError(source, [f"cluster: the record is of {record.cluster!r} but the spec is {spec.name!r}"])
    pattern = re.compile(rf"^{re.escape(spec.name)}-({'|'.join(TIER_ORDER)})-(0|[1-9][0-9]*)$")
    problems: list[str] = []
    nodes: list[Node] = []
    for name, node in record.nodes.items():
        match = pattern.match(name)
        if match is None:
            problems.append(f"nodes.{name}: not a node name of {spec.name} ({spec.name}-<etcd|master|worker>-<index>)")
            continue
        tier, index = Tier(match.group(1)), int(match.group(2))
        capacity = tier_capacity(spec.networking.node_cidr, tier)
        if index >= capacity:
            problems.append(f"nodes.{name}: index {index} is outside the {tier} address block ({capacity} slots)")
            continue
        revision = Revision(
            node.image,
            node.version.lstrip("v"),
            node.template,
            node.flavor,
            node.key_pair,
            node.volume_gb,
            node.certificates,
        )
        nodes.append(Node(tier, index, revision, node.phase))
    if problems:
        raise SpecError(source, problems)
    return ClusterState(tuple(nodes))


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def state_from_outputs(outputs: object, spec: ClusterSpec, source: str) -> ClusterState:
    """The state an update left, from its stack outputs (``nodeRevisions``): what ``kaas rollout record`` writes."""
    revisions = outputs.get("nodeRevisions") if isinstance(outputs, dict) else None
    if not isinstance(revisions, dict):
        raise SpecError(source, ["nodeRevisions: missing (outputs of a stack deployed before rollouts existed?)"])
    nodes = {
        name: {_snake(key): value for key, value in entry.items() if not (key == "phase" and value == "running")}
        for name, entry in revisions.items()
        if isinstance(entry, dict)
    }
    return parse_record({"cluster": spec.name, "nodes": nodes}, spec, source)


def load_record(path: Path, spec: ClusterSpec) -> ClusterState | None:
    """The recorded state at ``path``; None if there is no record (a stack never deployed)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(source, [f"cannot read the rollout record: {error}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SpecError(source, [f"(document): {where}not valid YAML: {getattr(error, 'problem', error)}"]) from None
    return parse_record(data, spec, source)


def record_document(cluster: str, state: ClusterState) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for node in state.nodes:
        # The revision's plain data, without a boot volume it does not have (the flavor's disk).
        entry = {k: v for k, v in revision_to_data(node.revision).items() if not (k == "volume_gb" and v is None)}
        if node.phase is not Phase.RUNNING:
            entry["phase"] = str(node.phase)
        nodes[node.name(cluster)] = entry
    return {"cluster": cluster, "nodes": nodes}


def dump_record(cluster: str, state: ClusterState) -> str:
    """The record file's text (a header, then one flow-style line per node)."""
    header = (
        f"# Rollout record of {cluster}: the revision each node runs. Written by\n"
        f"# `python -m kaas rollout record` after each `pulumi up`; review it like the spec.\n"
    )
    document = record_document(cluster, state)
    lines = [f"cluster: {cluster}", "nodes:"]
    for name, entry in document["nodes"].items():
        flow = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=1000).strip()
        lines.append(f"  {name}: {flow}")
    return header + "\n".join(lines) + "\n"
