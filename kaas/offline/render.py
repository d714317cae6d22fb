"""Plans as a `pulumi preview`-like tree and an outputs listing (the JSON format is :mod:`kaas.offline.planfile`)."""

from __future__ import annotations

from collections import Counter, defaultdict

from kaas.offline.engine import Plan, ResourceRecord
from kaas.offline.planfile import plan_json


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
