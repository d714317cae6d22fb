"""Consumer contracts for Day 1 (issue 12): each test states how a real consumer behaves, as a
rule the plan must satisfy, and cites the upstream file the rule comes from. Charts are
rendered with real Helm (tests/helm.py) from the pinned packages."""

from __future__ import annotations

import base64
import ipaddress
import re
from functools import cache
from typing import Any

import pytest
import yaml

from kaas.bootstrap.userdata.kubeadm import DISCOVERY_KUBECONFIG_PATH
from kaas.bootstrap.userdata.kubeconfig import ANONYMOUS_PATHS, authentication_configuration
from kaas.offline import Plan
from kaas.offline.plan import plan_stack
from kaas.offline.planfile import plain
from kaas.services import names
from kaas.services.catalog import CATALOG
from kaas.spec.loader import load_stack_spec
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helm import helm_template, render_release
from tests.helpers import cloud_config_files, cloud_config_kubeadm

RELEASE = "kubernetes:helm.sh/v3:Release"


@cache
def acme() -> Plan:
    return plan_stack("acme-prod")


def _doc(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


@cache
def rendered(name: str) -> list[dict[str, Any]]:
    [release] = [r for r in acme().by_type(RELEASE) if r.name == name]
    return render_release(release)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env") or []}


# --- kubeadm join --------------------------------------------------------------------------


def test_every_request_kubeadm_join_makes_before_tls_bootstrap_is_authenticated() -> None:
    # kubernetes/kubernetes cmd/kubeadm/app/discovery/token/token.go reads the kube-public
    # cluster-info ConfigMap without credentials; cmd/kubeadm/app/discovery/file/file.go reads
    # it with the file's credentials and accepts only a 403 (Forbidden) as "proceed": a 401 from
    # an anonymous request is retried until the discovery timeout. Our API server allows
    # anonymous requests only on ANONYMOUS_PATHS, so: token discovery needs the cluster-info
    # path allowed, file discovery needs credentials in the file.
    bp = bootstrap_plan("acme-prod")
    init = cloud_config_kubeadm(_doc(bp.texts("masterUserData")[0]))["InitConfiguration"]
    tokens = {t["token"]: t for t in init["bootstrapTokens"]}
    anonymous = {c["path"] for c in authentication_configuration()["anonymous"]["conditions"]}
    joins = [_doc(t) for t in bp.texts("masterUserData")[1:] + bp.texts("workerUserData")]
    assert joins
    for doc in joins:
        discovery = cloud_config_kubeadm(doc)["JoinConfiguration"]["discovery"]
        if "bootstrapToken" in discovery:
            assert "/api/v1/namespaces/kube-public/configmaps/cluster-info" in anonymous
            continue
        kubeconfig = yaml.safe_load(cloud_config_files(doc)[discovery["file"]["kubeConfigPath"]]["content"])
        [user] = kubeconfig["users"]
        token = user["user"].get("token") or discovery.get("tlsBootstrapToken")
        assert token in tokens, "the discovery file must authenticate with a token the API server knows"
        # kubeadm's bootstrap token authenticator (and the TLS bootstrap RBAC) need these.
        assert "authentication" in tokens[token]["usages"]
        assert "system:bootstrappers:kubeadm:default-node-token" in tokens[token]["groups"]
        ca = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        assert ca == bp.output("caCertPem")
    assert anonymous == set(ANONYMOUS_PATHS)


def test_nodes_reach_the_api_at_the_vip_which_admits_the_node_subnet_but_not_the_floating_pool() -> None:
    spec = load_stack_spec("acme-prod")
    bp = bootstrap_plan("acme-prod")
    vip = bp.output("apiVip")
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(spec.networking.node_cidr)
    cluster = cloud_config_kubeadm(_doc(bp.texts("masterUserData")[0]))["ClusterConfiguration"]
    # kube-proxy's and the kubelets' kubeconfigs take controlPlaneEndpoint (kubeadm), the
    # joining kubelet's the discovery file's server.
    assert cluster["controlPlaneEndpoint"] == f"{vip}:6443"
    for text in bp.texts("workerUserData"):
        kubeconfig = yaml.safe_load(cloud_config_files(_doc(text))[DISCOVERY_KUBECONFIG_PATH]["content"])
        assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{vip}:6443"
    [listener] = acme().by_type("openstack:loadbalancer/listener:Listener")
    assert spec.networking.node_cidr in listener.inputs["allowedCidrs"]
    # People only: acme-prod's allowed CIDRs no longer list the external network's pool.
    assert list(spec.networking.allowed_api_cidrs) == ["198.51.100.0/24"]


# --- kubelet serving certificates and metrics-server ----------------------------------------


def _approver_env() -> dict[str, str]:
    [deployment] = [r for r in acme().by_type("kubernetes:apps/v1:Deployment") if "kubelet-csr-approver" in r.name]
    [container] = plain(deployment.inputs)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_every_kubernetes_nodes_serving_csr_passes_the_approvers_checks() -> None:
    # postfinance/kubelet-csr-approver internal/controller/regex_ip_checks.go: DNSCheck needs
    # each SAN DNS name prefixed by the node name and matching PROVIDER_REGEX;
    # WhitelistedIPCheck needs each SAN IP inside PROVIDER_IP_PREFIXES. The kubelet's CSR holds
    # its host name (the instance name) and its node addresses (the planned port address).
    env = _approver_env()
    regex = re.compile(env["PROVIDER_REGEX"])
    prefixes = [ipaddress.ip_network(p) for p in env["PROVIDER_IP_PREFIXES"].split(",")]
    instances = acme().by_type("openstack:compute/instance:Instance")
    kube_nodes = [i for i in instances if i.inputs["metadata"]["kaas-tier"] in ("master", "worker")]
    assert len(kube_nodes) == 6
    for instance in kube_nodes:
        assert regex.match(instance.inputs["name"]), instance.inputs["name"]
    spec = load_stack_spec("acme-prod")
    for ip in (*_planned(spec, "masters"), *_planned(spec, "workers")):
        assert any(ipaddress.ip_address(ip) in p for p in prefixes)
    # etcd members are no kubelets: the approver must not sign for their names.
    assert not any(regex.match(i.inputs["name"]) for i in instances if i.inputs["metadata"]["kaas-tier"] == "etcd")
    assert cloud_config_kubeadm(_doc(bootstrap_plan("acme-prod").texts("masterUserData")[0]))["KubeletConfiguration"][
        "serverTLSBootstrap"
    ]


def _planned(spec: Any, tier: str) -> tuple[str, ...]:
    from kaas.openstack.addressing import plan_addresses

    addresses: tuple[str, ...] = getattr(plan_addresses(spec), tier)
    return addresses


def test_metrics_server_verifies_kubelet_certificates_and_dials_an_address_they_name() -> None:
    # kubernetes-sigs/metrics-server pkg/scraper/client/resolver.go picks the first address
    # type of --kubelet-preferred-address-types the node has; the serving certificate (approved
    # above) names the InternalIP. No --kubelet-insecure-tls: the cluster CA verifies.
    [deployment] = [o for o in rendered("metrics-server") if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--kubelet-insecure-tls" not in args
    [types] = [a.split("=", 1)[1] for a in args if a.startswith("--kubelet-preferred-address-types=")]
    assert types.split(",")[0] == "InternalIP"
    # Its readiness needs a first scrape, so the release waits for the approver.
    [release] = [r for r in acme().by_type(RELEASE) if r.name == "metrics-server"]
    assert any("kubelet-csr-approver" in acme().get(u).name for u in release.dependencies)


# --- ingress controller, cert-manager -------------------------------------------------------

# nginx/kubernetes-ingress internal/configs/annotations.go: the controller reads nginx.org/*,
# nginx.com/* (Plus), appprotect.f5.com/* and, of the generic ones, only
# ingress.kubernetes.io/ssl-redirect; cert-manager reads its own.
_READ_BY_NGINX_ORG = re.compile(r"^(nginx\.org/|nginx\.com/|appprotect\.f5\.com/)")
_READ_BY_CERT_MANAGER = re.compile(r"^(cert-manager\.io/|acme\.cert-manager\.io/)")
_GENERIC_READ = {"ingress.kubernetes.io/ssl-redirect"}
WEB_RELEASES = ("kube-prometheus-stack", "opensearch-dashboards", "harbor", "headlamp")


def _ingresses() -> list[dict[str, Any]]:
    found = [o for name in WEB_RELEASES for o in rendered(name) if o["kind"] == "Ingress"]
    plain_ingresses = [plain(r.inputs) for r in acme().by_type("kubernetes:networking.k8s.io/v1:Ingress")]
    return found + plain_ingresses


def test_every_ingress_annotation_is_one_its_reader_reads() -> None:
    ingresses = _ingresses()
    assert len(ingresses) >= 6
    for ingress in ingresses:
        for key in ingress["metadata"].get("annotations") or {}:
            assert _READ_BY_NGINX_ORG.match(key) or _READ_BY_CERT_MANAGER.match(key) or key in _GENERIC_READ, (
                ingress["metadata"]["name"],
                key,
            )


def test_every_ingress_is_solved_in_place_by_the_nginx_class() -> None:
    # cert-manager pkg/controller/certificate-shim/helper.go setIssuerSpecificConfig: with
    # acme.cert-manager.io/http01-edit-in-place "true" the Certificate names this Ingress
    # (http01-ingress-name override), and pkg/issuer/acme/http/ingress.go adds the solver's
    # path to it; otherwise the solver creates a second Ingress for
    # the same host, which the nginx.org controller rejects (one Ingress per host unless
    # mergeable masters/minions are used: internal/k8s/configuration.go host collisions).
    for ingress in _ingresses():
        annotations = ingress["metadata"].get("annotations") or {}
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert annotations.get("cert-manager.io/cluster-issuer") == names.CLUSTER_ISSUER
        assert annotations.get("acme.cert-manager.io/http01-edit-in-place") == "true"
    [issuer] = [r for r in acme().resources if r.name.endswith("cluster-issuer")]
    acme_spec = plain(issuer.inputs)["spec"]["acme"]
    assert acme_spec["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    assert acme_spec["email"] == load_stack_spec("acme-prod").services.ingress.acme_email


def test_harbor_accepts_image_layers_above_the_nginx_org_default_body_limit() -> None:
    # nginx.org's client_max_body_size default is 1m (docs: ConfigMap client-max-body-size);
    # nginx.org/client-max-body-size "0" disables the check, as Harbor's chart intends with
    # its ingress-nginx proxy-body-size "0".
    [ingress] = [o for o in rendered("harbor") if o["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"]["nginx.org/client-max-body-size"] == "0"


# --- chart secrets ------------------------------------------------------------------------


def _secret_values(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    out = {}
    for o in objects:
        if o["kind"] != "Secret":
            continue
        for key, value in (o.get("data") or {}).items():
            out[(o["metadata"]["name"], key)] = base64.b64decode(value).decode(errors="replace")
        for key, value in (o.get("stringData") or {}).items():
            out[(o["metadata"]["name"], key)] = str(value)
    return out


@pytest.mark.parametrize("name", ["harbor", "opensearch", "opensearch-dashboards", "kube-prometheus-stack"])
def test_no_rendered_chart_secret_equals_the_charts_published_default(name: str) -> None:
    # A default the chart renders identically twice is published in its values.yaml or
    # templates (goharbor/harbor-helm v1.18.1 values.yaml: secretKey "not-a-secure-key",
    # database.internal.password "changeit", registry.credentials.password
    # "harbor_registry_password", harborAdminPassword "Harbor12345"; grafana's
    # adminPassword "prom-operator"); random defaults (randAlphaNum) differ per render.
    [release] = [r for r in acme().by_type(RELEASE) if r.name == name]
    inputs = plain(release.inputs, show_secrets=True)
    chart, version, ns = inputs["chart"], inputs["version"], inputs["namespace"]
    first = _secret_values(helm_template(chart, version, {}, name=name, namespace=ns))
    second = _secret_values(helm_template(chart, version, {"_render": 2}, name=name, namespace=ns))
    credential = re.compile(r"(?i)secret|passw|key|token|cred|htpasswd")
    published = {k: v for k, v in first.items() if second.get(k) == v and v and credential.search(k[1])}
    assert name != "harbor" or published  # the rule has teeth: Harbor publishes several
    ours = _secret_values(rendered(name))
    for key, value in ours.items():
        assert published.get(key) != value, key
    assert not {v for v in ours.values()} & {"not-a-secure-key", "changeit", "harbor_registry_password", "Harbor12345"}


def test_harbor_takes_its_shared_secrets_from_the_generated_secret() -> None:
    # goharbor/harbor-helm v1.18.1 templates/core/core-dpl.yaml, jobservice-dpl.yaml,
    # registry-dpl.yaml: with core/jobservice/registry.existingSecret, core.existingXsrfSecret
    # and existingSecretSecretKey the pods read these keys from our Secret, and the chart
    # renders none of its own.
    objects = rendered("harbor")
    refs = {
        (e["name"], e["valueFrom"]["secretKeyRef"]["name"])
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
        for e in c.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }
    for var in ("CORE_SECRET", "JOBSERVICE_SECRET", "REGISTRY_HTTP_SECRET", "CSRF_KEY"):
        assert (var, names.HARBOR_INTERNAL) in refs, var
    volumes = [
        v for o in objects if o["kind"] == "Deployment" for v in o["spec"]["template"]["spec"].get("volumes") or []
    ]
    assert any(
        v.get("secret", {}).get("secretName") == names.HARBOR_INTERNAL for v in volumes if v["name"] == "secret-key"
    )


def test_only_harbor_pods_reach_its_passwordless_redis() -> None:
    # goharbor/harbor-helm templates/_helpers.tpl harbor.redis.password: "" for type internal.
    [policy] = [
        plain(r.inputs) for r in acme().by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") if "redis" in r.name
    ]
    objects = rendered("harbor")
    [redis] = [o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("redis")]
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            assert allowed.items() <= o["spec"]["template"]["metadata"]["labels"].items(), o["metadata"]["name"]


def test_opensearch_runs_without_demo_security() -> None:
    # opensearch-project/opensearch-build docker/release/config/opensearch/
    # opensearch-docker-entrypoint-2.x.sh: the demo installer runs unless
    # DISABLE_INSTALL_DEMO_CONFIG=true; the security plugin's default internal_users.yml holds
    # the demo users, so the mounted one must define none.
    objects = rendered("opensearch")
    [sts] = [o for o in objects if o["kind"] == "StatefulSet"]
    [container] = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "opensearch"]
    env = _env(container)
    assert env["DISABLE_INSTALL_DEMO_CONFIG"]["value"] == "true"
    assert "OPENSEARCH_INITIAL_ADMIN_PASSWORD" not in env
    users = _secret_values(objects)[("opensearch-master-securityconfig", "internal_users.yml")]
    assert set(yaml.safe_load(users)) == {"_meta"}
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and "opensearch.yml" in (o.get("data") or {})]
    opensearch_yml = yaml.safe_load(config["data"]["opensearch.yml"])
    assert "plugins.security.allow_unsafe_democertificates" not in opensearch_yml
    assert opensearch_yml["plugins.security.ssl.http"]["enabled"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/usr/share/opensearch/config/certs" in mounts


def test_fluent_bit_writes_as_the_least_privileged_user_with_tls_verified() -> None:
    # fluent/fluent-bit plugins/out_opensearch: HTTP_User/HTTP_Passwd for basic auth;
    # tls.verify (default On) with tls.ca_file; the role may only write logs-* indices.
    objects = rendered("fluent-bit")
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and "fluent-bit.conf" in (o.get("data") or {})]
    text = config["data"]["fluent-bit.conf"]
    assert "HTTP_User fluent-bit" in text and "tls.verify On" in text
    [ca_file] = set(re.findall(r"tls\.ca_file (\S+)", text))
    [daemonset] = [o for o in objects if o["kind"] == "DaemonSet"]
    [container] = daemonset["spec"]["template"]["spec"]["containers"]
    assert any(ca_file.startswith(m["mountPath"]) for m in container["volumeMounts"])
    assert _env(container)["OPENSEARCH_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == names.OPENSEARCH_FLUENT_BIT
    from kaas.services.values import opensearch_log_writer_role

    role = opensearch_log_writer_role()
    assert [p["index_patterns"] for p in role["index_permissions"]] == [["logs-*"]]
    assert "all_access" not in str(role) and "indices_all" not in str(role)


def test_headlamp_binds_no_cluster_role() -> None:
    # kubernetes-sigs/headlamp charts/headlamp values.yaml: clusterRoleBinding.create true
    # binds the service account to cluster-admin by default.
    kinds = {o["kind"] for o in rendered("headlamp")}
    assert "ClusterRoleBinding" not in kinds and "RoleBinding" not in kinds


def test_catalog_charts_are_the_rendered_ones() -> None:
    names_rendered = {r.inputs["chart"] for r in acme().by_type(RELEASE)}
    assert names_rendered <= {c.name.value for c in CATALOG.values()}


def test_the_discovery_kubeconfig_loads_in_client_go(tmp_path: Any) -> None:
    # kubeadm loads the file with client-go's clientcmd.LoadFromFile and uses its current
    # context (cmd/kubeadm/app/discovery/file/file.go); kubectl is the same loader.
    import json
    import subprocess

    from tests.helm import kubectl_bin

    bp = bootstrap_plan("demo")
    text = cloud_config_files(_doc(bp.texts("workerUserData")[0]))[DISCOVERY_KUBECONFIG_PATH]["content"]
    path = tmp_path / "discovery.kubeconfig"
    path.write_text(text)
    shown = subprocess.run(
        [str(kubectl_bin()), "--kubeconfig", str(path), "config", "view", "--minify", "--raw", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(shown.stdout)
    assert config["clusters"][0]["cluster"]["server"] == f"https://{bp.output('apiVip')}:6443"
    assert config["users"][0]["user"]["token"] == bp.output("bootstrapToken").value


def test_every_opensearch_client_dials_a_rendered_service_its_certificate_names() -> None:
    # opensearch-project/helm-charts charts/opensearch templates/_helpers.tpl
    # opensearch.masterService: the Service is ``masterService`` (default
    # "opensearch-cluster-master"), not derived from clusterName. Fluent Bit, Dashboards and
    # the Jobs verify TLS, so the host they dial must be a Service and a certificate DNS name.
    from urllib.parse import urlparse

    from kaas.services import objects, values

    spec = load_stack_spec("acme-prod")
    services = {o["metadata"]["name"] for o in rendered("opensearch") if o["kind"] == "Service"}
    [node_cert] = [c for c in objects.opensearch_certificates(spec) if c["metadata"]["name"] == "opensearch-node"]
    dns_names = node_cert["spec"]["dnsNames"]
    host = urlparse(values.opensearch_url()).hostname
    assert host in services and host in dns_names
    fluent_conf = next(
        o["data"]["fluent-bit.conf"]
        for o in rendered("fluent-bit")
        if o["kind"] == "ConfigMap" and "fluent-bit.conf" in (o.get("data") or {})
    )
    [fluent_host] = set(re.findall(r"^\s+Host (\S+)$", fluent_conf, flags=re.M))
    assert fluent_host in services and fluent_host in dns_names
    [sts] = [o for o in rendered("opensearch") if o["kind"] == "StatefulSet"]
    # Pods are <sts>-<n>.<serviceName>: the wildcard of the headless Service covers them.
    assert f"*.{sts['spec']['serviceName']}" in dns_names
