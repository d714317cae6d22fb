"""Hardening on the nodes and API servers: metadata guard (real nft in network namespaces),
encryption at rest, audit policy, Pod Security default, expiring join credentials, and an
inventory of every secret in every node's user data."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas.bootstrap import hardening
from kaas.bootstrap.userdata.etcd import BACKUP_ENV_PATH
from kaas.bootstrap.userdata.kubeadm import (
    ADMISSION_CONFIG_PATH,
    APISERVER_CONFIG_DIR,
    AUDIT_POLICY_PATH,
    DISCOVERY_KUBECONFIG_PATH,
    ENCRYPTION_CONFIG_PATH,
    KUBEADM_CONFIG_PATH,
)
from kaas.bootstrap.userdata.nodes import KUBEADM_BOOTSTRAP_SCRIPT, SHARED_PKI_DIR
from kaas.offline import Secret
from tests.bootstrap_fixtures import BACKUP_SECRET, bootstrap_plan
from tests.helpers import cloud_config_files, cloud_config_kubeadm

STACKS = ("dev", "demo", "acme-prod", "minimal")


def _doc(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def _api_args(cluster: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}


# ---------------------------------------------------------------------------------
# Metadata service: the real nft in network namespaces


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 nftables)"
    probe = f"kaasprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this machine forbids network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=True)
    return None


def _sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class Lab:
    """Three namespaces: a pod, the node (routes and forwards) and the metadata server.

    pod 10.244.1.2 --veth-- node 10.244.1.1 | 192.0.2.1 --veth-- metadata 192.0.2.2 + 169.254.169.254
    The pod's packets to 169.254.169.254 are forwarded by the node, as with every CNI; the
    node's own connections leave through ``output``.
    """

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:5]
        self.pod, self.node, self.meta = f"k17pod{tag}", f"k17node{tag}", f"k17meta{tag}"
        self.links = (f"kp{tag}", f"kn{tag}", f"km{tag}", f"kx{tag}")

    def up(self) -> None:
        pod, node, meta = self.pod, self.node, self.meta
        p_pod, p_node, m_node, m_meta = self.links
        for ns in (pod, node, meta):
            _sh("ip", "netns", "add", ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", p_pod, "netns", pod, "type", "veth", "peer", "name", p_node, "netns", node)
        _sh("ip", "link", "add", m_node, "netns", node, "type", "veth", "peer", "name", m_meta, "netns", meta)
        _sh("ip", "-n", pod, "addr", "add", "10.244.1.2/24", "dev", p_pod)
        _sh("ip", "-n", node, "addr", "add", "10.244.1.1/24", "dev", p_node)
        _sh("ip", "-n", node, "addr", "add", "192.0.2.1/24", "dev", m_node)
        _sh("ip", "-n", meta, "addr", "add", "192.0.2.2/24", "dev", m_meta)
        _sh("ip", "-n", meta, "addr", "add", f"{hardening.METADATA_IPV4}/32", "dev", m_meta)
        for ns, link in ((pod, p_pod), (node, p_node), (node, m_node), (meta, m_meta)):
            _sh("ip", "-n", ns, "link", "set", link, "up")
        _sh("ip", "-n", pod, "route", "add", "default", "via", "10.244.1.1")
        _sh("ip", "-n", node, "route", "add", f"{hardening.METADATA_IPV4}/32", "via", "192.0.2.2")
        _sh("ip", "-n", meta, "route", "add", "10.244.0.0/16", "via", "192.0.2.1")
        _sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def down(self) -> None:
        for ns in (self.pod, self.node, self.meta):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def exec(self, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done

    def connect(self, ns: str, source: str | None = None) -> str:
        """ "connected", "refused" or "timeout" for a TCP connection to the metadata service from ``ns``."""
        code = (
            "import socket,sys\n"
            "s=socket.socket()\n"
            "s.settimeout(3)\n"
            f"{f's.bind(({source!r},0))' if source else ''}\n"
            "try:\n"
            f"    s.connect(({hardening.METADATA_IPV4!r},80)); print('connected')\n"
            "except ConnectionRefusedError: print('refused')\n"
            "except OSError as e: print('timeout' if 'timed out' in str(e) else repr(e))\n"
        )
        return self.exec(ns, "python3", "-c", code).stdout.strip()


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = _netns_usable()
    if reason is not None:
        pytest.skip(reason)
    lab = Lab()
    lab.up()
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.meta, "python3", "-m", "http.server", "--bind", hardening.METADATA_IPV4, "80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Python's start-up alone can take seconds on a loaded test machine.
        deadline = time.monotonic() + 90
        while lab.connect(lab.node) != "connected":
            assert time.monotonic() < deadline, "the metadata stand-in did not start"
            time.sleep(0.2)
        yield lab
    finally:
        server.terminate()
        server.wait(timeout=10)
        lab.down()


def test_metadata_guard_refuses_pods_and_keeps_the_node_and_the_allow_list(lab: Lab, tmp_path: Path) -> None:
    # Without the guard the pod reaches the metadata service: the lab itself is not the reason.
    assert lab.connect(lab.pod) == "connected"

    ruleset = tmp_path / "guard.nft"
    ruleset.write_text(hardening.metadata_guard_ruleset(["10.244.1.128/25"]))
    lab.exec(lab.node, "nft", "-f", str(ruleset))
    # Loading twice replaces the table (boot after boot, a re-run of the unit).
    lab.exec(lab.node, "nft", "-f", str(ruleset))
    assert lab.exec(lab.node, "nft", "list", "tables").stdout.split().count(hardening.METADATA_GUARD_TABLE) == 1

    assert lab.connect(lab.pod) == "refused"
    assert lab.connect(lab.node) == "connected"
    # A pod address on the spec's allow-list still gets through.
    lab.exec(lab.pod, "ip", "addr", "add", "10.244.1.200/24", "dev", lab.links[0])
    assert lab.connect(lab.pod, source="10.244.1.200") == "connected"
    assert lab.connect(lab.pod, source="10.244.1.2") == "refused"

    # Another table accepting everything at the same hook (as kube-proxy's or the CNI's
    # rules do) cannot undo the reject: a drop/reject in any base chain is final.
    other = tmp_path / "other.nft"
    other.write_text(
        "table inet other {\n  chain everything {\n    type filter hook forward priority -50; policy accept;\n"
        "    counter accept\n  }\n}\n"
    )
    lab.exec(lab.node, "nft", "-f", str(other))
    assert lab.connect(lab.pod) == "refused"


def test_metadata_guard_is_on_every_kubernetes_node_and_loaded_before_kubeadm() -> None:
    for stack in ("demo", "acme-prod"):
        bp = bootstrap_plan(stack)
        for text in bp.texts("masterUserData") + bp.texts("workerUserData"):
            doc = _doc(text)
            files = cloud_config_files(doc)
            assert files[hardening.METADATA_GUARD_PATH]["content"] == hardening.metadata_guard_ruleset(
                bp.spec.security.metadata_allowed_pod_cidrs
            )
            unit = files[f"/etc/systemd/system/{hardening.METADATA_GUARD_UNIT}"]["content"]
            assert f"ExecStart=/usr/sbin/nft -f {hardening.METADATA_GUARD_PATH}" in unit
            assert "Before=network-pre.target kubelet.service" in unit
            assert "nftables" in doc["packages"]
            runcmd = doc["runcmd"]
            enable = runcmd.index(["systemctl", "enable", "--now", hardening.METADATA_GUARD_UNIT])
            assert enable < runcmd.index([KUBEADM_BOOTSTRAP_SCRIPT])


def test_metadata_guard_covers_ipv4_and_ipv6_and_parses_in_nft(tmp_path: Path) -> None:
    text = hardening.metadata_guard_ruleset(["10.244.9.0/24"])
    assert "hook forward" in text and "hook output" not in text and "hook input" not in text
    assert f"ip daddr {hardening.METADATA_IPV4}" in text and f"ip6 daddr {hardening.METADATA_IPV6}" in text
    assert text.index("10.244.9.0/24") < text.index("reject")
    if shutil.which("nft") is None or os.geteuid() != 0:
        pytest.skip("nft --check needs nft and root")
    path = tmp_path / "guard.nft"
    path.write_text(text)
    # --check parses and validates against the kernel without committing.
    subprocess.run(["nft", "--check", "-f", str(path)], check=True, capture_output=True, text=True)


# ---------------------------------------------------------------------------------
# Encryption at rest


@pytest.mark.parametrize("stack", ["dev", "acme-prod"])
def test_secrets_are_encrypted_at_rest_on_every_master(stack: str) -> None:
    """Field by field against apiserver.config.k8s.io/v1 EncryptionConfiguration
    (k8s.io/apiserver/pkg/apis/apiserver/v1/types.go; "Encrypting Confidential Data at Rest":
    the first provider encrypts, ``identity`` last reads what was stored before; secretbox keys are 32 bytes)."""
    bp = bootstrap_plan(stack)
    key = bp.output("secretsEncryptionKey")
    assert isinstance(key, Secret), "the encryption key must be a Pulumi secret"
    assert len(base64.b64decode(key.value, validate=True)) == 32
    for text in bp.texts("masterUserData"):
        files = cloud_config_files(_doc(text))
        entry = files[ENCRYPTION_CONFIG_PATH]
        assert entry["permissions"] == "0600"
        config = yaml.safe_load(entry["content"])
        assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
        assert config["kind"] == "EncryptionConfiguration"
        [resource] = config["resources"]
        assert resource["resources"] == ["secrets"]
        first, last = resource["providers"]
        assert last == {"identity": {}}
        [entry_key] = first["secretbox"]["keys"]
        assert entry_key == {"name": "key1", "secret": key.value}
    first_master = _doc(bp.texts("masterUserData")[0])
    cluster = cloud_config_kubeadm(first_master)["ClusterConfiguration"]
    args = _api_args(cluster)
    assert args["encryption-provider-config"] == ENCRYPTION_CONFIG_PATH
    mounts = {v["mountPath"]: v for v in cluster["apiServer"]["extraVolumes"]}
    # kubeadm v1beta4 HostPathMount: the directory holding the file is mounted into the static pod.
    config_dir = mounts[APISERVER_CONFIG_DIR]
    assert config_dir["hostPath"] == APISERVER_CONFIG_DIR and config_dir["readOnly"] is True
    assert os.path.dirname(ENCRYPTION_CONFIG_PATH) == APISERVER_CONFIG_DIR


def test_no_worker_carries_the_encryption_key() -> None:
    bp = bootstrap_plan("acme-prod")
    key = bp.output("secretsEncryptionKey").value
    assert not any(key in text for text in bp.texts("workerUserData") + bp.texts("etcdUserData"))


def test_rotation_config_writes_with_the_first_key_and_reads_with_all() -> None:
    old = hardening.EncryptionKey("key1", base64.b64encode(b"o" * 32).decode())
    new = hardening.EncryptionKey("key2", base64.b64encode(b"n" * 32).decode())
    config = hardening.encryption_configuration([new, old])
    keys = config["resources"][0]["providers"][0]["secretbox"]["keys"]
    assert [k["name"] for k in keys] == ["key2", "key1"]
    with pytest.raises(ValueError, match="32"):
        hardening.EncryptionKey("short", base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="base64"):
        hardening.EncryptionKey("bad", "not base64!")


# ---------------------------------------------------------------------------------
# Audit


def test_audit_policy_levels_and_log_rotation_on_the_api_server() -> None:
    """audit.k8s.io/v1 Policy (k8s.io/apiserver/pkg/apis/audit/v1/types.go): first match wins."""
    policy = hardening.audit_policy()
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    rules = policy["rules"]
    assert {r["level"] for r in rules} <= {"None", "Metadata", "Request", "RequestResponse"}

    def level_for(group: str, resource: str, verb: str) -> str:
        for rule in rules:
            if "nonResourceURLs" in rule:
                continue
            if "verbs" in rule and verb not in rule["verbs"]:
                continue
            selectors = rule.get("resources")
            if selectors is None or any(
                s["group"] == group and resource in s.get("resources", [resource]) for s in selectors
            ):
                return str(rule["level"])
        raise AssertionError("no rule matched")

    assert level_for("", "events", "create") == "None"
    # Never the body of a Secret (its values) in the log shipped to OpenSearch.
    assert level_for("", "secrets", "create") == "Metadata"
    assert level_for("", "secrets", "get") == "Metadata"
    assert level_for("rbac.authorization.k8s.io", "clusterrolebindings", "create") == "Request"
    assert level_for("rbac.authorization.k8s.io", "clusterrolebindings", "get") == "Metadata"
    assert level_for("apps", "deployments", "patch") == "Metadata"
    assert rules[0]["level"] == "None" and "/healthz*" in rules[0]["nonResourceURLs"]

    bp = bootstrap_plan("acme-prod")
    doc = _doc(bp.texts("masterUserData")[0])
    files = cloud_config_files(doc)
    assert yaml.safe_load(files[AUDIT_POLICY_PATH]["content"]) == policy
    cluster = cloud_config_kubeadm(doc)["ClusterConfiguration"]
    args = _api_args(cluster)
    assert args["audit-policy-file"] == AUDIT_POLICY_PATH
    assert args["audit-log-path"] == hardening.AUDIT_LOG_PATH
    assert (args["audit-log-maxage"], args["audit-log-maxbackup"], args["audit-log-maxsize"]) == ("7", "10", "100")
    log_dir = {v["mountPath"]: v for v in cluster["apiServer"]["extraVolumes"]}[hardening.AUDIT_LOG_DIR]
    assert log_dir["readOnly"] is False and log_dir["hostPath"] == hardening.AUDIT_LOG_DIR


# ---------------------------------------------------------------------------------
# Pod Security default


@pytest.mark.parametrize(
    ("level", "stack_override"), [("baseline", {}), ("restricted", {"pod_security_default": "restricted"})]
)
def test_pod_security_default_applies_to_namespaces_created_later(level: str, stack_override: dict[str, str]) -> None:
    """PodSecurityConfiguration defaults (pod-security.admission.config.k8s.io/v1) apply to every
    namespace without its own pod-security.kubernetes.io labels, including ones made with kubectl."""
    from kaas.bootstrap.component import ClusterBootstrap  # noqa: F401  (import check only)
    from tests.helpers import make_spec

    spec = make_spec(security=stack_override)
    config = hardening.admission_configuration(spec.security.pod_security_default.value)
    assert (config["apiVersion"], config["kind"]) == ("apiserver.config.k8s.io/v1", "AdmissionConfiguration")
    [plugin] = config["plugins"]
    assert plugin["name"] == "PodSecurity"
    psa = plugin["configuration"]
    assert (psa["apiVersion"], psa["kind"]) == ("pod-security.admission.config.k8s.io/v1", "PodSecurityConfiguration")
    assert psa["defaults"]["enforce"] == level
    assert psa["defaults"]["warn"] == psa["defaults"]["audit"] == level
    assert "kube-system" in psa["exemptions"]["namespaces"]
    assert "default" not in psa["exemptions"]["namespaces"]

    bp = bootstrap_plan("acme-prod")
    for text in bp.texts("masterUserData"):
        files = cloud_config_files(_doc(text))
        assert yaml.safe_load(files[ADMISSION_CONFIG_PATH]["content"]) == hardening.admission_configuration("baseline")
    cluster = cloud_config_kubeadm(_doc(bp.texts("masterUserData")[0]))["ClusterConfiguration"]
    assert _api_args(cluster)["admission-control-config-file"] == ADMISSION_CONFIG_PATH


# ---------------------------------------------------------------------------------
# Join credentials and the user-data secret inventory


def test_bootstrap_token_expires_after_the_specs_ttl() -> None:
    bp = bootstrap_plan("acme-prod")
    init = cloud_config_kubeadm(_doc(bp.texts("masterUserData")[0]))["InitConfiguration"]
    [token] = init["bootstrapTokens"]
    assert token["ttl"] == f"{bp.spec.security.bootstrap_token_ttl_hours}h0m0s" == "24h0m0s"


def test_nodes_wipe_the_token_and_the_shared_keys_after_joining() -> None:
    bp = bootstrap_plan("acme-prod")
    first = cloud_config_files(_doc(bp.texts("masterUserData")[0]))[KUBEADM_BOOTSTRAP_SCRIPT]["content"]
    worker = cloud_config_files(_doc(bp.texts("workerUserData")[0]))[KUBEADM_BOOTSTRAP_SCRIPT]["content"]
    tail = first[first.index("done\n", first.index("until kubeadm")) :]
    for path in (KUBEADM_CONFIG_PATH, f"{SHARED_PKI_DIR}/ca.key"):
        assert f"shred --remove --force {path}" in tail
    assert f"shred --remove --force {DISCOVERY_KUBECONFIG_PATH}" in worker


PEM_KEY = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----")

# The reviewed allow-list: (tier, path) -> what secret it holds and why it must travel in user data.
USER_DATA_SECRETS: dict[tuple[str, str], str] = {
    # etcd members: their own peer/server key, and the S3 credential of the backup container.
    ("etcd", "/etc/etcd/pki/member.key"): "member key (etcd has no CSR flow)",
    ("etcd", "/etc/etcd/pki/peer.key"): "peer key, own peer CA since issue 18 (etcd has no CSR flow)",
    ("etcd", BACKUP_ENV_PATH): "EC2 credential of the backup container",
    # The first master signs the cluster: kubeadm init needs the CAs and the SA key on disk.
    ("first-master", f"{SHARED_PKI_DIR}/ca.key"): "Kubernetes CA key (init)",
    ("first-master", f"{SHARED_PKI_DIR}/sa.key"): "service-account signing key (init)",
    ("first-master", f"{SHARED_PKI_DIR}/front-proxy-ca.key"): "front-proxy CA key (init)",
    ("first-master", f"{SHARED_PKI_DIR}/apiserver-etcd-client.key"): "API server's etcd client key",
    ("first-master", KUBEADM_CONFIG_PATH): "bootstrap token (expires) + certificate key",
    ("first-master", ENCRYPTION_CONFIG_PATH): "Secrets encryption key (every API server)",
    # Other masters: the token, the certificate key for kubeadm-certs (deleted by kubeadm after 2 h).
    ("master", DISCOVERY_KUBECONFIG_PATH): "bootstrap token (expires)",
    ("master", KUBEADM_CONFIG_PATH): "certificate key for the uploaded certificates",
    ("master", ENCRYPTION_CONFIG_PATH): "Secrets encryption key (every API server)",
    ("worker", DISCOVERY_KUBECONFIG_PATH): "bootstrap token (expires)",
}


def _secret_values(bp: Any) -> dict[str, str]:
    """Every secret value the bootstrap layer knows, by name (PEM keys found by pattern)."""
    names = ("bootstrapToken", "secretsEncryptionKey", "certificateKey")
    values = {name: bp.output(name).value for name in names}
    token = values["bootstrapToken"]
    values["bootstrapTokenSecret"] = token.split(".")[1]
    values["backupSecretKey"] = BACKUP_SECRET
    return values


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_in_user_data_is_on_the_reviewed_allow_list(stack: str) -> None:
    bp = bootstrap_plan(stack)
    secrets = _secret_values(bp)
    found: set[tuple[str, str]] = set()
    tiers = [("etcd", t) for t in bp.texts("etcdUserData")]
    masters = bp.texts("masterUserData")
    tiers += [("first-master", masters[0])] + [("master", t) for t in masters[1:]]
    tiers += [("worker", t) for t in bp.texts("workerUserData")]
    for tier, text in tiers:
        for entry in _doc(text)["write_files"]:
            content = entry["content"]
            holds = bool(PEM_KEY.search(content)) or any(v in content for v in secrets.values())
            if holds:
                found.add((tier, entry["path"]))
                assert entry["permissions"] == "0600", (tier, entry["path"])
    expected = {k for k in USER_DATA_SECRETS if len(masters) > 1 or k[0] != "master"}
    assert found == expected


# ---------------------------------------------------------------------------------
# Audit logs shipped to OpenSearch (real Helm render of the Fluent Bit release)


def test_fluent_bit_ships_the_audit_log_from_the_masters_to_its_own_index_under_the_retention() -> None:
    """fluent-bit chart 0.58.1: config.inputs/outputs become fluent-bit.conf, /var/log is a hostPath
    (daemonSetVolumes), tolerations go to the DaemonSet; out_opensearch Logstash_Prefix names the
    daily index <prefix>-YYYY.MM.DD."""
    from kaas.offline.plan import plan_stack
    from kaas.services import values
    from tests.helm import render_release

    plan = plan_stack("acme-prod")
    [release] = [r for r in plan.by_type("kubernetes:helm.sh/v3:Release") if r.name == "fluent-bit"]
    objects = render_release(release)
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and "fluent-bit.conf" in (o.get("data") or {})]
    text = config["data"]["fluent-bit.conf"]
    assert f"Path {hardening.AUDIT_LOG_PATH}" in text and "Tag audit.*" in text
    assert re.search(r"Match audit\.\*\n(.*\n)*?\s+Logstash_Prefix logs-audit\n", text)
    [daemonset] = [o for o in objects if o["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    # Runs on the masters: some toleration tolerates their taint (Kubernetes' rule: an empty key
    # with operator Exists tolerates every taint; an empty effect matches every effect).
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    assert any(
        t.get("operator") == "Exists"
        and t.get("key", "") in ("", taint["key"])
        and t.get("effect", "") in ("", taint["effect"])
        for t in pod["tolerations"]
    ), pod["tolerations"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    [container] = pod["containers"]
    mounted = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in host_paths}
    assert any(hardening.AUDIT_LOG_PATH.startswith(m.rstrip("/") + "/") for m in mounted)
    # logs-audit-* is under the ISM delete-after-retention template and the writer's role.
    spec = load_spec_acme()
    [template] = values.ism_policy(spec)["policy"]["ism_template"]
    assert any(re.fullmatch(p.replace("*", ".*"), "logs-audit-2026.12.01") for p in template["index_patterns"])
    assert spec.services.logging.retention_days == 7
    role = values.opensearch_log_writer_role()
    assert any(
        re.fullmatch(p.replace("*", ".*"), "logs-audit-2026.12.01")
        for perm in role["index_permissions"]
        for p in perm["index_patterns"]
    )


def load_spec_acme() -> Any:
    from kaas.spec.loader import load_stack_spec

    return load_stack_spec("acme-prod")
