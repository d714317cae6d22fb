"""The plan's JSON format, written and read in one place.

``python -m kaas plan --json`` writes a :class:`~kaas.offline.engine.Plan` with
:func:`plan_json`; ``kaas diff`` reads the base revision's plan back with
:func:`plan_from_json`. Recorded values are trees of dicts, lists, scalars,
:class:`~kaas.offline.engine.Secret` and :data:`~kaas.offline.engine.UNKNOWN`;
:func:`plain` is the one way to turn such a tree into JSON-ready data, secrets
masked as :data:`SECRET_MASK` or revealed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kaas.offline.engine import UNKNOWN, Plan, ResourceRecord, Secret

SECRET_MASK = "[secret]"
UNKNOWN_MARK = "[unknown]"


def plain(value: Any, show_secrets: bool = False) -> Any:
    """JSON-ready form of a recorded value; secrets masked unless ``show_secrets`` (then unwrapped)."""
    if isinstance(value, Secret):
        return plain(value.value, show_secrets) if show_secrets else SECRET_MASK
    if value is UNKNOWN:
        return UNKNOWN_MARK
    if isinstance(value, dict):
        return {k: plain(v, show_secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, show_secrets) for v in value]
    return value


def record_json(record: ResourceRecord, show_secrets: bool = False) -> dict[str, Any]:
    data = asdict(record)
    data["inputs"] = plain(record.inputs, show_secrets)
    return {
        "urn": data["urn"],
        "type": data["type"],
        "name": data["name"],
        "parent": data["parent"],
        "custom": data["custom"],
        "inputs": data["inputs"],
        "dependencies": data["dependencies"],
        "propertyDependencies": data["property_dependencies"],
        "options": data["options"],
    }


def plan_json(plan: Plan, show_secrets: bool = False) -> dict[str, Any]:
    """The document ``python -m kaas plan --json [--show-secrets]`` prints."""
    return {
        "stack": plan.stack,
        "resources": [record_json(r, show_secrets) for r in plan.resources],
        "outputs": plain(plan.outputs, show_secrets),
    }


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
