"""No anonymous web UI: every Ingress of every stack (chart-rendered by real Helm, and the
plain objects) requires a login, either from the nginx.org controller (HTTP Basic) or from
the application behind it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from kaas.offline.plan import plan_stack
from kaas.offline.planfile import plain
from kaas.services import names, values
from tests.helm import render_release

STACKS = ("dev", "demo", "acme-prod")
RELEASE = "kubernetes:helm.sh/v3:Release"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
SECRET = "kubernetes:core/v1:Secret"

# Reviewed: applications that show a login page themselves, by host label.
OWN_LOGIN = {
    "grafana": "Grafana login (generated admin password, grafana-admin Secret)",
    "kibana": "OpenSearch Dashboards with the security plugin (no anonymous auth)",
    "registry": "Harbor login (generated admin password)",
    "dashboard": "Headlamp asks for a token and binds no cluster role",
}


def _ingresses(stack: str) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    plan = plan_stack(stack)
    found: list[dict[str, Any]] = []
    for record in plan.by_type(RELEASE):
        for obj in render_release(record):
            if obj.get("kind") == "Ingress":
                obj.setdefault("metadata", {}).setdefault("namespace", plain(record.inputs.get("namespace")))
                found.append(obj)
    found += [plain(r.inputs) for r in plan.by_type(INGRESS)]
    secrets = {}
    for record in plan.by_type(SECRET):
        body = plain(record.inputs, show_secrets=True)
        secrets[(body["metadata"]["namespace"], body["metadata"]["name"])] = body
    return found, secrets


@pytest.mark.parametrize("stack", STACKS)
def test_every_ingress_requires_a_login(stack: str) -> None:
    ingresses, secrets = _ingresses(stack)
    assert ingresses, "no Ingress found: the listing is broken"
    for ingress in ingresses:
        meta = ingress["metadata"]
        hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
        labels = {h.split(".", 1)[0] for h in hosts}
        annotations = meta.get("annotations") or {}
        auth_secret = annotations.get("nginx.org/basic-auth-secret")
        if auth_secret is not None:
            secret = secrets[(meta["namespace"], auth_secret)]
            assert secret["type"] == "nginx.org/htpasswd"
            assert secret["stringData"]["htpasswd"].startswith(f"{names.WEB_USER}:{{SSHA}}")
            continue
        assert labels <= set(OWN_LOGIN), f"{meta['name']} ({hosts}) is served without any login"


def test_monitoring_uis_without_a_login_get_basic_auth() -> None:
    ingresses, _ = _ingresses("acme-prod")
    guarded = {
        rule["host"].split(".", 1)[0]
        for i in ingresses
        if "nginx.org/basic-auth-secret" in (i["metadata"].get("annotations") or {})
        for rule in i["spec"]["rules"]
    }
    assert guarded == {"prometheus", "alertmanager", names.APP_PROMETHEUS_HOST}


def test_htpasswd_line_is_salted_sha1_that_nginx_verifies_and_stable() -> None:
    """nginx ngx_http_auth_basic_module: "{SSHA}" is base64(SHA1(password + salt) + salt)."""
    line = values.htpasswd_line("admin", "s3cret-password")
    assert line == values.htpasswd_line("admin", "s3cret-password")
    user, encoded = line.strip().split(":", 1)
    assert user == "admin" and encoded.startswith("{SSHA}")
    raw = base64.b64decode(encoded.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    assert hashlib.sha1(b"s3cret-password" + salt).digest() == digest
    assert hashlib.sha1(b"wrong" + salt).digest() != digest
    assert values.htpasswd_line("admin", "other") != line


def test_the_web_login_is_a_pulumi_secret() -> None:
    from kaas.offline import Secret

    plan = plan_stack("acme-prod")
    by_name = {r.name: r for r in plan.by_type(SECRET)}
    for name, key in (("acme-prod-web-basic-auth", "htpasswd"), ("acme-prod-web-login", "password")):
        data = by_name[name].inputs["stringData"]
        assert isinstance(data, Secret) or isinstance(data[key], Secret), name
