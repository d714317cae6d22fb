"""Shell assignments the end-to-end workflow reads from a stack's spec (``eval "$(...)"``).

``python -m kaas.e2e_facts <stack>`` prints ``ns``, ``nodes`` (masters + workers),
``registry`` (Harbor's host, empty when the registry is off) and ``logging`` (true/false).
"""

from __future__ import annotations

import shlex
import sys

from kaas.services import names
from kaas.services.values import host
from kaas.spec import ClusterSpec, load_stack_spec


def facts(spec: ClusterSpec) -> dict[str, str]:
    services = spec.services
    return {
        "ns": spec.platform_namespace,
        "nodes": str(spec.masters.count + spec.workers.count),
        "registry": host(spec, names.REGISTRY_HOST) if services.registry.enabled else "",
        "logging": "true" if services.logging.enabled else "false",
    }


def main(argv: list[str]) -> int:
    (stack,) = argv
    for key, value in facts(load_stack_spec(stack)).items():
        print(f"{key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
