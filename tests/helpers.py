"""Shared test helpers: specs built in memory, plans through the offline engine."""

from __future__ import annotations

from typing import Any

from kaas.spec import ClusterSpec, parse_spec

MINIMAL: dict[str, Any] = {
    "name": "t1",
    "domain": "k8s.example.com",
    "openstack": {
        "cloud": "test",
        "auth_url": "https://keystone.test.example:5000/v3",
        "s3_endpoint": "https://swift.test.example:8080",
        "external_network": "public",
        "availability_zones": ["az1", "az2", "az3"],
    },
    "identity": {"initial_admin_user": "admin"},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def spec_data(**override: Any) -> dict[str, Any]:
    return merge(MINIMAL, override)


def make_spec(**override: Any) -> ClusterSpec:
    return parse_spec(spec_data(**override), "<test>")
