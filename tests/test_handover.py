from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kaas.handover import kubeconfig_yaml, render_html, render_markdown
from kaas.handover.demo_app import demo_host, demo_manifests
from kaas.outputs import StackOutputs
from tests.helpers import make_outputs

# Upstream documentation a handover may link to besides the cluster's own URLs.
UPSTREAM_DOCS = {
    "https://kubernetes.io/releases/version-skew-policy/",
    "https://github.com/kubernetes/cloud-provider-openstack/releases",
}
URL = re.compile(r"https?://[^\s<>\"'`)]+")


def _output_urls(value: Any) -> set[str]:
    """Every string in the outputs that is a URL."""
    if isinstance(value, dict):
        return set().union(*(_output_urls(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_output_urls(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) and URL.fullmatch(value) else set()


def _allowed_urls(outputs: StackOutputs) -> set[str]:
    return _output_urls(outputs.model_dump(mode="json")) | {f"https://{demo_host(outputs)}"} | UPSTREAM_DOCS


@pytest.mark.parametrize("kind", ["production", "demo"])
@pytest.mark.parametrize("render", [render_markdown, render_html])
def test_every_url_in_the_document_comes_from_the_outputs(kind: Any, render: Any) -> None:
    outputs = make_outputs()
    document = render(outputs, kind)
    found = {url.rstrip(".,;") for url in URL.findall(document)} - {"http://www.w3.org/2000/svg"}
    assert found, "the document names no URL at all"
    assert found <= _allowed_urls(outputs), found - _allowed_urls(outputs)
    for service in ("grafana", "prometheus", "alertmanager", "registry", "dashboard"):
        assert f"https://{service}.t1.k8s.example.com" in found


def test_changing_outputs_changes_the_document() -> None:
    before = render_markdown(make_outputs(), "production")
    after = render_markdown(
        make_outputs(
            {"dns_zone_name": "t1.other.example.org."},
            domain="other.example.org",
            workers={"count": 7},
            services={"logging": {"retention_days": 11}},
            etcd_backup={"interval_hours": 6},
        ),
        "production",
    )
    assert "| workers | 3 |" in before and "| workers | 7 |" in after
    assert "deletes indices after 7 days" in before and "deletes indices after 11 days" in after
    assert "a snapshot every 8 hours" in before and "a snapshot every 6 hours" in after
    assert "https://kibana.t1.k8s.example.com" in before
    assert "https://kibana.t1.other.example.org" in after and "k8s.example.com" not in after
    assert "host: demo.t1.other.example.org" in after


def test_facts_reach_the_document() -> None:
    document = render_markdown(
        make_outputs({"admin_role_id": "feedface" * 4, "ingress_floating_ip": "192.0.2.99"}), "demo"
    )
    assert "name: " + "feedface" * 4 in document  # the ClusterRoleBinding's group
    assert "`192.0.2.99`" in document


def test_production_explains_core_concepts_and_demo_recaps_needs() -> None:
    production = render_markdown(make_outputs(), "production")
    demo = render_markdown(make_outputs(), "demo")
    assert "## Kubernetes core concepts" in production and "kube-scheduler" in production
    assert "## Kubernetes core concepts" not in demo and "## Recap of customer needs" in demo
    for document in (production, demo):
        for section in (
            "Pre-handover checklist",
            "Customer architecture",
            "kubectl walkthrough",
            "Other services",
            "Feedback",
        ):
            assert f"## {section}" in document
    assert "## Security caveats" in production and "## Best practices" in production


def test_disabled_services_are_left_out_of_the_document() -> None:
    document = render_markdown(
        make_outputs(environment="demo", services={"logging": {"enabled": False}, "registry": {"enabled": False}}),
        "demo",
    )
    assert "kibana." not in document and "Registry (Harbor)" not in document and "pull secrets" not in document
    assert "Grafana" in document


def test_preview_is_marked_and_real_outputs_are_not() -> None:
    outputs = make_outputs()
    assert "PREVIEW" in render_markdown(outputs, "demo", preview=True, origin="offline plan of stack t1")
    assert "PREVIEW" not in render_markdown(outputs, "demo")
    assert "PREVIEW" in render_html(outputs, "demo", preview=True) and "PREVIEW" not in render_html(outputs, "demo")


# Without cert-manager, logging goes too (OpenSearch's certificates come from it).
@pytest.mark.parametrize(
    "spec_override",
    [{}, {"environment": "demo", "services": {"ingress": {"cert_manager": False}, "logging": {"enabled": False}}}],
)
def test_demo_manifests_validate_against_the_kubernetes_schema(spec_override: dict[str, Any]) -> None:
    outputs = make_outputs(**spec_override)
    manifests = demo_manifests(outputs)
    assert [m["kind"] for m in manifests] == ["Namespace", "Deployment", "Service", "Ingress"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, f"{outputs.kubernetes_version.rsplit('.', 1)[0]}.0", strict=True)
    ingress = manifests[-1]
    assert ingress["spec"]["rules"][0]["host"] == "demo.t1.k8s.example.com"


def test_the_schema_check_would_catch_a_broken_manifest() -> None:
    deployment = demo_manifests(make_outputs())[1]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.34.0", strict=True)


def test_the_manifests_in_the_document_are_the_generated_ones() -> None:
    outputs = make_outputs()
    document = render_markdown(outputs, "demo")
    block = document.split("Save as `hello.yaml`", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert list(yaml.safe_load_all(block)) == demo_manifests(outputs)


def _parse_html(document: str) -> ET.Element:
    assert document.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(document.removeprefix("<!DOCTYPE html>\n"))


@pytest.mark.parametrize("kind", ["production", "demo"])
def test_html_is_well_formed_and_self_contained(kind: Any) -> None:
    root = _parse_html(render_html(make_outputs(), kind))
    elements = list(root.iter())
    tags = {e.tag.split("}")[-1] for e in elements}
    assert {"svg", "table", "pre", "style"} <= tags
    assert not {"script", "link", "img", "iframe", "object"} & tags
    for element in elements:
        assert "src" not in element.attrib
        if "href" in element.attrib:
            assert element.tag == "a"
    style = "".join(e.text or "" for e in elements if e.tag.split("}")[-1] == "style")
    assert "url(" not in style and "@import" not in style


def test_html_diagram_draws_the_tiers_and_entry_points() -> None:
    root = _parse_html(render_html(make_outputs(workers={"count": 12}), "production"))
    svg = next(e for e in root.iter() if e.tag.endswith("svg"))
    texts = [t.text or "" for t in svg.iter() if t.tag.endswith("text")]
    assert "workers: 12 nodes" in texts and "etcd: 5 nodes" in texts and "masters: 3 nodes" in texts
    assert "+ 3 more" in texts  # 9 workers drawn, the rest counted
    assert any("198.51.100.7:6443" in t for t in texts) and any("198.51.100.8" in t for t in texts)


def test_html_escapes_values() -> None:
    # The spec refuses such a user name; the outputs file read back may still carry one.
    outputs = make_outputs()
    outputs = outputs.model_copy(update={"rbac": outputs.rbac.model_copy(update={"initial_admin_user": "a<b>&c"})})
    document = render_html(outputs, "demo")
    _parse_html(document)
    assert "a&lt;b&gt;&amp;c" in document and "a<b>&c" not in document


def test_kubeconfig_uses_the_keystone_exec_plugin_endpoint_and_ca() -> None:
    outputs = make_outputs(identity={"project": "acme", "domain": "customers"})
    config = yaml.safe_load(kubeconfig_yaml(outputs, user="alice"))
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://api.t1.k8s.example.com:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == outputs.ca_certificate
    user = config["users"][0]
    assert user["name"] == "alice"
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "client-keystone-auth"
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1" and exec_["interactiveMode"] == "IfAvailable"
    assert "--keystone-url=https://keystone.test.example:5000/v3" in exec_["args"]
    assert "--domain-name=customers" in exec_["args"] and "--project-name=acme" in exec_["args"]
    env = {e["name"]: e["value"] for e in exec_["env"]}
    assert env["OS_USERNAME"] == "alice" and env["OS_PROJECT_NAME"] == "acme"
    assert "OS_PASSWORD" not in env and "token" not in str(config).lower()
    assert config["current-context"] == "alice@t1"


def test_kubeconfig_defaults_to_the_initial_admin_user() -> None:
    config = yaml.safe_load(kubeconfig_yaml(make_outputs()))
    assert config["users"][0]["name"] == "admin"
    args = config["users"][0]["user"]["exec"]["args"]
    assert "--domain-name=Default" in args  # the spec's identity.domain default
    assert not any(a.startswith("--project-name") for a in args)
