"""Plans as JSON documents and as a `pulumi preview`-like tree."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict
from typing import Any

from kaas.offline.engine import UNKNOWN, Plan, ResourceRecord, Secret

SECRET_MASK = "[secret]"


def plain(value: Any, show_secrets: bool = False) -> Any:
    """JSON-ready form of a recorded value; secrets masked unless ``show_secrets``."""
    if isinstance(value, Secret):
        return plain(value.value, show_secrets) if show_secrets else SECRET_MASK
    if value is UNKNOWN:
        return "[unknown]"
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
    return {
        "stack": plan.stack,
        "resources": [record_json(r, show_secrets) for r in plan.resources],
        "outputs": plain(plan.outputs, show_secrets),
    }


def plan_tree(plan: Plan) -> str:
    """The resource tree as `pulumi preview` prints it, then a count summary."""
    children: dict[str | None, list[ResourceRecord]] = defaultdict(list)
    for record in plan.resources:
        children[record.parent].append(record)
    rows: list[tuple[str, str]] = []

    def walk(record: ResourceRecord, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else prefix + ("└─ " if last else "├─ ")
        rows.append((branch + record.type, record.name))
        kids = children.get(record.urn, [])
        for index, kid in enumerate(kids):
            extension = "" if depth == 0 else prefix + ("   " if last else "│  ")
            walk(kid, extension, index == len(kids) - 1, depth + 1)

    for root in children.get(None, []):
        walk(root, "", True, 0)
    width = max((len(t) for t, _ in rows), default=4) + 2
    lines = [f"     {'Type':<{width}}Name", *(f" +   {t:<{width}}{n}" for t, n in rows)]
    custom = sum(1 for r in plan.resources if r.custom)
    components = len(plan.resources) - custom
    lines += [
        "",
        "Resources:",
        f"    + {len(plan.resources)} to create ({custom} cloud resources, {components} components)",
    ]
    by_provider = Counter(r.type.split(":", 1)[0] for r in plan.resources if r.custom)
    lines.append("    " + ", ".join(f"{pkg}: {n}" for pkg, n in sorted(by_provider.items())))
    return "\n".join(lines)


def outputs_text(plan: Plan, show_secrets: bool = False) -> str:
    import json

    lines = ["Outputs:"]
    for key, value in sorted(plan_json(plan, show_secrets)["outputs"].items()):
        text = json.dumps(value) if not isinstance(value, str) else value
        if "\n" in text:
            text = "\n        ".join(["|", *text.splitlines()])
        lines.append(f"    {key}: {text}")
    return "\n".join(lines)
