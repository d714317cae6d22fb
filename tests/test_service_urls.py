"""Every service URL in a stack's outputs is served: it is an Ingress host of the same plan.

The handover hands the customer the URLs of :class:`kaas.outputs.StackOutputs`; the
services layer creates the Ingresses. Both derive the host names separately, so this
checks them against each other for every stack in ``stacks/``: the Ingresses are the
plan's plain ``networking.k8s.io/v1`` Ingress objects plus those the planned Helm
releases render (with real ``helm template``, :mod:`tests.helm`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from kaas.offline import plan_stack
from kaas.offline.planfile import plain
from kaas.spec.loader import STACKS_DIR
from tests.helm import render_release

STACKS = sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _rule_hosts(ingress: dict[str, Any]) -> set[str]:
    return {rule["host"] for rule in (ingress.get("spec") or {}).get("rules") or [] if rule.get("host")}


def service_urls(outputs: dict[str, Any]) -> dict[str, str]:
    """``{service: url}`` of the ``services`` stack output (a service without a URL is not listed)."""
    return {
        name: service["url"]
        for name, service in (outputs.get("services") or {}).items()
        if isinstance(service, dict) and "url" in service
    }


def ingress_hosts(stack: str) -> tuple[dict[str, str], set[str]]:
    plan = plan_stack(stack)
    hosts: set[str] = set()
    for record in plan.by_type(INGRESS):
        hosts |= _rule_hosts(plain(record.inputs, show_secrets=True))
    for record in plan.by_type(RELEASE):
        for manifest in render_release(record):
            if manifest.get("kind") == "Ingress" and manifest.get("apiVersion") == "networking.k8s.io/v1":
                hosts |= _rule_hosts(manifest)
    return service_urls(plain(plan.outputs)), hosts


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_url_is_an_ingress_host_of_the_same_plan(stack: str) -> None:
    urls, hosts = ingress_hosts(stack)
    assert urls, f"{stack}: no service URL in the outputs, nothing is checked"
    unserved = {}
    for service, url in urls.items():
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.port is None and parts.path in ("", "/"), f"{service}: {url}"
        if parts.hostname not in hosts:
            unserved[service] = url
    assert not unserved, f"{stack}: service URLs no Ingress serves: {unserved}; Ingress hosts: {sorted(hosts)}"
