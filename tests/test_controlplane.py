"""Consumer behaviour of the real control plane (pinned kube-apiserver, kubeadm, etcd) with the plan's configuration.

The control plane comes from ``tests/controlplane.py`` (see its docstring for the few
local changes); one per session, on one xdist worker (``xdist_group``). Tests that
change cluster state (the join preparation, the CRDs and namespaces for the dry runs)
only add objects the others do not look at.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from cryptography import x509

from kaas.bootstrap import kubeadm_certs
from kaas.bootstrap.hardening import TLS_CIPHER_SUITES
from kaas.bootstrap.pki import discovery_ca_hash
from kaas.bootstrap.userdata.kubeadm import (
    AUTHENTICATION_CONFIG_PATH,
    KUBEADM_CONFIG_PATH,
    KUBERNETES_PKI_DIR,
    ControlPlaneCertificates,
    kubelet_configuration,
)
from kaas.bootstrap.userdata.nodes import SHARED_PKI_DIR
from kaas.offline.plan import plan_spec, plan_stack
from kaas.offline.planfile import plain
from kaas.roll.live import kube_client
from kaas.roll.tokens import JOIN_TOKEN_TTL, JoinTokens
from kaas.rollout.record import desired_from_spec
from tests.bootstrap_fixtures import bootstrap_plan
from tests.controlplane import (
    KEYSTONE_API_VERSIONS,
    STACK,
    ControlPlane,
    binary,
    checked,
    copy_shared_pki,
    install_user_data,
    kubeadm_documents,
    missing_binaries,
    run,
    with_server,
    write,
)
from tests.helm import kubectl_bin, render_release
from tests.helpers import make_ca_pem

pytestmark = pytest.mark.xdist_group("controlplane")

STACKS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "stacks").glob("*.yaml"))


# ---------------------------------------------------------------------------------
# Anonymous requests
#
# Upstream: staging/src/k8s.io/apiserver/pkg/authentication/request/anonymous/anonymous.go
# (with conditions, a request is anonymous only when its path equals one of them) and
# https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-authenticator-configuration


def _anonymous_paths(cp: ControlPlane) -> list[str]:
    config = yaml.safe_load(cp.master.read(AUTHENTICATION_CONFIG_PATH))
    return [condition["path"] for condition in config["anonymous"]["conditions"]]


def test_anonymous_requests_are_authenticated_on_the_configured_paths(control_plane: ControlPlane) -> None:
    paths = _anonymous_paths(control_plane)
    assert paths
    for path in paths:
        response = control_plane.request("GET", path)
        assert response.status_code != 401, (path, response.text)
        if path in ("/healthz", "/livez", "/readyz"):  # system:public-info-viewer lets anonymous read them
            assert response.status_code == 200, (path, response.text)


def test_anonymous_requests_are_refused_on_every_other_path(control_plane: ControlPlane) -> None:
    allowed = set(_anonymous_paths(control_plane))
    elsewhere = [
        "/version",  # public-info-viewer would allow it: only the authenticator stands in the way
        "/api",
        "/apis",
        "/openapi/v2",
        "/metrics",
        "/livez/ping",  # a sub-path of an allowed one is another path
        "/api/v1/namespaces",
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
        "/api/v1/namespaces/kube-system/secrets",
    ]
    refused = {path: control_plane.request("GET", path).status_code for path in elsewhere if path not in allowed}
    assert refused and set(refused.values()) == {401}, refused
    # The same paths with the admin's client certificate: the refusals above are the anonymous rule's.
    assert control_plane.request("GET", "/version", admin=True).json()["gitVersion"] == "v" + _pinned_kubernetes()


def _pinned_kubernetes() -> str:
    from kaas import versions

    return versions.KUBERNETES


# ---------------------------------------------------------------------------------
# Keystone webhooks
#
# Upstream: staging/src/k8s.io/apiserver/plugin/pkg/authenticator/token/webhook/webhook.go
# and staging/src/k8s.io/apiserver/plugin/pkg/authorizer/webhook/webhook.go (what is sent,
# how the answer is read); https://kubernetes.io/docs/reference/access-authn-authz/webhook/.
# k8s-keystone-auth serves both on one URL (cloud-provider-openstack
# pkg/identity/keystone/keystone.go, Handler: TokenReview or SubjectAccessReview by kind).


def test_keystone_webhooks_authenticate_and_authorize_with_the_generated_configuration(
    control_plane: ControlPlane,
) -> None:
    keystone = control_plane.keystone
    token = f"keystone-{uuid.uuid4().hex}"  # fresh: the API server caches webhook answers
    user = f"alice-{uuid.uuid4().hex[:8]}"
    keystone.tokens[token] = {"username": user, "uid": "4c7e9c2f", "groups": ["project-a-member"]}
    keystone.allow = lambda review: (
        review["spec"]["user"] == user
        and review["spec"].get("resourceAttributes", {}).get("resource") == "pods"
        and review["spec"]["resourceAttributes"].get("verb") == "list"
    )
    before = len(keystone.reviews)

    pods = control_plane.request("GET", "/api/v1/namespaces/default/pods", token=token)
    secrets = control_plane.request("GET", "/api/v1/namespaces/default/secrets", token=token)
    unknown_token = f"not-keystone-{uuid.uuid4().hex}"
    unknown = control_plane.request("GET", "/api/v1/namespaces/default/pods", token=unknown_token)

    reviews = keystone.reviews[before:]
    # k8s-keystone-auth answers only v1beta1 reviews: the API server must send those.
    assert {r["apiVersion"] for r in reviews} <= set(KEYSTONE_API_VERSIONS), reviews
    assert pods.status_code == 200, pods.text
    assert secrets.status_code == 403, secrets.text  # neither RBAC nor the webhook allows it
    assert unknown.status_code == 401, unknown.text  # keystone's 401 answer is a refusal, not an error
    reviewed_tokens = [r["spec"]["token"] for r in reviews if r["kind"] == "TokenReview"]
    assert token in reviewed_tokens and unknown_token in reviewed_tokens
    access = [r["spec"] for r in reviews if r["kind"] == "SubjectAccessReview"]
    asked = {(a["user"], a["resourceAttributes"]["verb"], a["resourceAttributes"]["resource"]) for a in access}
    assert {(user, "list", "pods"), (user, "list", "secrets")} <= asked
    pods_review = next(a for a in access if a["resourceAttributes"]["resource"] == "pods")
    assert {"project-a-member", "system:authenticated"} <= set(pods_review["group"])
    assert pods_review["resourceAttributes"]["namespace"] == "default"


# ---------------------------------------------------------------------------------
# kubeadm join discovery
#
# Upstream: cmd/kubeadm/app/discovery/token/token.go (cluster-info fetched without
# credentials, then verified by the token's JWS signature and the pinned CA hash),
# cmd/kubeadm/app/discovery/file/file.go, cmd/kubeadm/app/cmd/phases/join/preflight.go
# (the preflight phase runs discovery and reads kubeadm-config with the bootstrap token),
# cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/clusterinfo.go (who may read cluster-info).

DISCOVERY_TIMEOUT = "15s"  # the plan waits 30 min for a load balancer; a refusal here should fail fast


@pytest.fixture(scope="module")
def joinable(control_plane: ControlPlane) -> ControlPlane:
    """What the first master's ``kubeadm init`` does for joining nodes, by kubeadm's own phases."""
    for phase in (("bootstrap-token",), ("upload-config", "kubeadm"), ("upload-config", "kubelet")):
        checked(
            control_plane.kubeadm(
                "init",
                "phase",
                *phase,
                f"--config={control_plane.kubeadm_config}",
                f"--kubeconfig={control_plane.admin_kubeconfig}",
            )
        )
    return control_plane


def _join_configuration(
    cp: ControlPlane,
    user_data: str,
    root: Path,
    ca_cert_hash: str | None = None,
    discovery_ca_pem: str | None = None,
) -> Path:
    """The node's generated JoinConfiguration, pointed at the fixture's API server (the only change;
    ``ca_cert_hash`` / ``discovery_ca_pem`` replace what pins the cluster, for the refusal tests)."""
    node = install_user_data(user_data, root)
    docs = kubeadm_documents(node)
    join = docs["JoinConfiguration"]
    discovery = join["discovery"]
    if "bootstrapToken" in discovery:
        discovery["bootstrapToken"]["apiServerEndpoint"] = cp.endpoint
        if ca_cert_hash is not None:
            discovery["bootstrapToken"]["caCertHashes"] = [ca_cert_hash]
    if "file" in discovery:
        path = Path(discovery["file"]["kubeConfigPath"])
        if not path.is_relative_to(node.root):
            path = node.path(str(path))
        discovery["file"]["kubeConfigPath"] = str(path)
        kubeconfig = with_server(yaml.safe_load(path.read_text()), lambda _: cp.server)
        if discovery_ca_pem is not None:
            for cluster in kubeconfig["clusters"]:
                cluster["cluster"]["certificate-authority-data"] = base64.b64encode(discovery_ca_pem.encode()).decode()
        write(path, yaml.safe_dump(kubeconfig))
    join.setdefault("timeouts", {})["discovery"] = DISCOVERY_TIMEOUT
    return write(root / "kubeadm-local.yaml", yaml.safe_dump_all(docs.values(), sort_keys=False))


def _join_preflight(cp: ControlPlane, config: Path) -> subprocess.CompletedProcess[str]:
    # Preflight checks for the host (root, CRI socket, ports, images) are about this test
    # machine, not the configuration: ignored. Discovery and fetching the cluster's
    # configuration are not checks and cannot be ignored.
    return cp.kubeadm(
        "join", "phase", "preflight", f"--config={config}", "--ignore-preflight-errors=all", "-v=1", timeout=180
    )


# Issue 12 replaced token discovery (which reads cluster-info anonymously, refused by the
# AuthenticationConfiguration) with file discovery authenticated by the bootstrap token.
@pytest.mark.parametrize("node", ["worker", "second-master"])
def test_join_discovery_succeeds_with_the_generated_join_configuration(
    joinable: ControlPlane, node: str, tmp_path: Path
) -> None:
    user_data = (
        joinable.plan.texts("workerUserData")[0] if node == "worker" else joinable.plan.texts("masterUserData")[1]
    )
    result = _join_preflight(joinable, _join_configuration(joinable, user_data, tmp_path / node))
    output = result.stdout + result.stderr
    if node == "worker":
        assert result.returncode == 0, output  # discovery, then kubeadm-config read with the bootstrap token
        assert "kubeadm-config" in output
    else:
        # kubeadm prints this once discovery succeeded, the cluster's configuration was read
        # with the bootstrap token and the shared certificates were found; the host checks
        # that follow (a CRI socket) fail on a test machine and cannot be ignored.
        assert "Running pre-flight checks before initializing the new control plane instance" in output, output


def test_join_discovery_refuses_a_cluster_whose_ca_is_not_pinned(joinable: ControlPlane, tmp_path: Path) -> None:
    # Token discovery pins the CA by caCertHashes; file discovery by the CA in the discovery
    # kubeconfig, which client-go verifies the API server against
    # (cmd/kubeadm/app/discovery/file/file.go ValidateConfigInfo).
    worker = joinable.plan.texts("workerUserData")[0]
    foreign_ca = make_ca_pem()
    config = _join_configuration(
        joinable, worker, tmp_path / "worker", ca_cert_hash=discovery_ca_hash(foreign_ca), discovery_ca_pem=foreign_ca
    )
    (join,) = (d for d in yaml.safe_load_all(config.read_text()) if d["kind"] == "JoinConfiguration")
    result = _join_preflight(joinable, config)
    output = result.stderr + result.stdout
    assert result.returncode != 0
    if "bootstrapToken" in join["discovery"]:
        assert "none of the public keys" in output
    else:
        assert "certificate signed by unknown authority" in output, output


# ---------------------------------------------------------------------------------
# The kubeadm-certs Secret the program declares for a joining master (kaas.bootstrap.kubeadm_certs)
#
# Upstream: cmd/kubeadm/app/phases/copycerts/copycerts.go (UploadCerts writes the Secret and
# the Role/RoleBinding kubeadm:kubeadm-certs; DownloadCerts, run by `kubeadm join phase
# control-plane-prepare download-certs`, reads it with the bootstrap token, decrypts every entry
# with the certificate key and writes each file to certsToTransfer's path),
# cmd/kubeadm/app/util/crypto/crypto.go (EncryptBytes / DecryptBytes).


def _planned_certificates(cp: ControlPlane) -> ControlPlaneCertificates:
    """The shared certificates as the plan renders them (the first master's user data): the
    values the program hands kaas.bootstrap.kubeadm_certs.secret_data (ClusterBootstrap.control_plane_certificates)."""
    fields = [f.name for f in dataclasses.fields(ControlPlaneCertificates)]
    paths = ControlPlaneCertificates(*fields).files()  # field name -> its path, in field order
    by_field = {field: rel for rel, field in paths.items()}
    return ControlPlaneCertificates(**{f: cp.master.read(f"{SHARED_PKI_DIR}/{by_field[f]}") for f in fields})


def _local_config(cp: ControlPlane) -> dict[str, dict[str, Any]]:
    """The first master's kubeadm documents as the fixture ran them (LOCAL_CHANGES), by kind."""
    return {d["kind"]: d for d in yaml.safe_load_all(cp.kubeadm_config.read_text())}


def _put_secret(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    path = "/api/v1/namespaces/kube-system/secrets"
    cp.request("DELETE", f"{path}/kubeadm-certs", admin=True)
    response = cp.request("POST", path, admin=True, body=manifest)
    assert response.status_code == 201, response.text


def _join_phase(
    cp: ControlPlane, phase: str, rootfs: Path, certificate_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``kubeadm join phase control-plane-prepare <phase>`` of the second master's planned
    JoinConfiguration (its certificate key replaced by ``certificate_key`` when given), with file
    discovery pointed at the fixture's API server as in _join_configuration. ``--rootfs`` (kubeadm
    chroots into it): what it writes lands under ``rootfs`` at the paths the cluster's kubeadm-config
    names, not over the fixture master's own; the admin.conf the kubeconfig phase would leave for the
    later phases' client is the fixture's admin."""
    node = install_user_data(bootstrap_plan(STACK).texts("masterUserData")[1], rootfs / "node")
    join = kubeadm_documents(node)["JoinConfiguration"]
    if certificate_key is not None:
        join["controlPlane"]["certificateKey"] = certificate_key
    kubeconfig = with_server(
        yaml.safe_load(Path(join["discovery"]["file"]["kubeConfigPath"]).read_text()), lambda _: cp.server
    )
    write(rootfs / "discovery.kubeconfig", yaml.safe_dump(kubeconfig))
    join["discovery"]["file"]["kubeConfigPath"] = "/discovery.kubeconfig"  # inside the chroot
    join.setdefault("timeouts", {})["discovery"] = DISCOVERY_TIMEOUT
    write(rootfs / "join.yaml", yaml.safe_dump(join, sort_keys=False))
    write(rootfs / "etc" / "kubernetes" / "admin.conf", cp.admin_kubeconfig.read_text())
    return cp.kubeadm(
        "join", "phase", "control-plane-prepare", phase, "--config=/join.yaml", f"--rootfs={rootfs}",
        "-v=1", timeout=180,
    )  # fmt: skip


def _download_certs(cp: ControlPlane, key: str, rootfs: Path) -> subprocess.CompletedProcess[str]:
    """``download-certs`` with certificate key ``key`` (:func:`_join_phase`)."""
    return _join_phase(cp, "download-certs", rootfs, certificate_key=key)


@pytest.fixture(scope="module")
def kubeadm_certs_uploaded(joinable: ControlPlane) -> dict[str, Any]:
    """What the first master's ``kubeadm init --upload-certs`` leaves (its own upload-certs phase, with the
    plan's InitConfiguration and certificate key): the Role/RoleBinding kubeadm:kubeadm-certs and its Secret."""
    checked(
        joinable.kubeadm(
            "init", "phase", "upload-certs", "--upload-certs", f"--config={joinable.kubeadm_config}",
            f"--kubeconfig={joinable.admin_kubeconfig}",
        )
    )  # fmt: skip
    response = joinable.request("GET", "/api/v1/namespaces/kube-system/secrets/kubeadm-certs", admin=True)
    assert response.status_code == 200, response.text
    uploaded: dict[str, Any] = response.json()
    return uploaded


def test_kubeadm_downloads_the_planned_kubeadm_certs_secret_to_the_planned_files(
    joinable: ControlPlane, kubeadm_certs_uploaded: dict[str, Any], tmp_path: Path
) -> None:
    planned = _planned_certificates(joinable)
    key = _local_config(joinable)["InitConfiguration"]["certificateKey"]
    manifest = kubeadm_certs.secret_manifest(planned, key)
    # The same entries kubeadm's own UploadCerts writes for this configuration (an external etcd).
    assert set(manifest["data"]) == set(kubeadm_certs_uploaded["data"])
    # Two hours after kubeadm init its Secret is gone (owner: a 2 h token); the program's replaces it.
    _put_secret(joinable, manifest)

    result = _download_certs(joinable, key, tmp_path / "rootfs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[download-certs] Saving the certificates" in result.stdout, result.stdout + result.stderr
    cluster = _local_config(joinable)["ClusterConfiguration"]  # what the cluster's kubeadm-config holds
    external = cluster["etcd"]["external"]
    landed = {
        # kubeadm's name -> where DownloadCerts wrote it (certificatesDir or etcd.external's files), under --rootfs
        name: tmp_path / "rootfs" / (
            {"external-etcd-ca.crt": external["caFile"], "external-etcd.crt": external["certFile"],
             "external-etcd.key": external["keyFile"]}.get(name) or f"{cluster['certificatesDir']}/{name}"
        ).lstrip("/")
        for name in kubeadm_certs.CERTS_TO_TRANSFER
    }  # fmt: skip
    files = planned.files()
    for name, ours in kubeadm_certs.CERTS_TO_TRANSFER.items():
        assert landed[name].read_bytes() == files[ours].encode(), name


def test_kubeadm_refuses_the_planned_kubeadm_certs_secret_with_another_key(
    joinable: ControlPlane, kubeadm_certs_uploaded: dict[str, Any], tmp_path: Path
) -> None:
    planned = _planned_certificates(joinable)
    key = _local_config(joinable)["InitConfiguration"]["certificateKey"]
    _put_secret(joinable, kubeadm_certs.secret_manifest(planned, key))
    wrong = key[::-1]
    result = _download_certs(joinable, wrong, tmp_path / "rootfs")
    assert result.returncode != 0
    assert "error decoding secret data with provided key" in result.stdout + result.stderr, result.stderr
    assert not list((tmp_path / "rootfs").glob("**/pki/ca.key"))


# ---------------------------------------------------------------------------------
# kube-system/kubeadm-config: what a joining master's static pods are built from
#
# Upstream: cmd/kubeadm/app/cmd/join.go (fetchInitConfigurationFromJoinConfiguration ->
# configutil.FetchInitConfigurationFromCluster reads the ConfigMap's ClusterConfiguration),
# cmd/kubeadm/app/phases/controlplane/manifests.go (GetStaticPodSpecs: images from
# kubernetesVersion, flags from the components' extraArgs).

NEXT_PATCH = "1.34.3"  # a patch upgrade: what kaas roll rebuilds masters for


def _join_control_plane_manifests(cp: ControlPlane, rootfs: Path) -> dict[str, dict[str, Any]]:
    """The static pod manifests ``control-plane`` (:func:`_join_phase`) writes, by component."""
    checked(_join_phase(cp, "control-plane", rootfs))
    manifests = rootfs / "etc" / "kubernetes" / "manifests"
    return {path.stem: yaml.safe_load(path.read_text()) for path in manifests.glob("*.yaml")}


def _command(pod: dict[str, Any]) -> list[str]:
    (container,) = pod["spec"]["containers"]
    command: list[str] = container["command"]
    return command


def _planned_cluster_configuration(version: str) -> str:
    """What the program writes into kubeadm-config when kaas roll rebuilds the first master for ``version``."""
    spec = bootstrap_plan(STACK).spec
    bumped = spec.model_copy(update={"versions": spec.versions.model_copy(update={"kubernetes": version})})
    plan = plan_spec(bumped, recorded=desired_from_spec(spec).initial_state())
    (config_map,) = [r for r in plan.by_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-kubeadm-config")]
    text: str = config_map.inputs["data"][kubeadm_certs.CLUSTER_CONFIGURATION_KEY]
    return text


def _apply_cluster_configuration(cp: ControlPlane, text: str) -> requests.Response:
    """Server-side apply of the one key, forced, as the program's patchForce resource does."""
    return requests.patch(
        cp.server + "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
        params={"fieldManager": "pulumi-kubernetes-kaas", "force": "true"},
        data=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": kubeadm_certs.CONFIG_MAP_NAME, "namespace": "kube-system"},
                "data": {kubeadm_certs.CLUSTER_CONFIGURATION_KEY: text},
            }
        ),
        headers={"Content-Type": "application/apply-patch+yaml"},
        cert=cp.admin_cert,
        verify=str(cp.ca_file),
        timeout=30,
    )


def test_a_master_joining_with_kubeadms_own_config_would_run_the_old_version(
    joinable: ControlPlane, tmp_path: Path
) -> None:
    # Why the program writes kubeadm-config: kubeadm init uploaded it once, at the first version.
    manifests = _join_control_plane_manifests(joinable, tmp_path / "rootfs")
    image = manifests["kube-apiserver"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":v{bootstrap_plan(STACK).spec.versions.kubernetes}")


def test_a_master_joining_after_the_programs_kubeadm_config_runs_the_new_version_with_the_planned_flags(
    joinable: ControlPlane, tmp_path: Path
) -> None:
    path = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"
    original = joinable.request("GET", path, admin=True).json()
    planned = _planned_cluster_configuration(NEXT_PATCH)
    try:
        applied = _apply_cluster_configuration(joinable, planned)
        assert applied.ok, applied.text
        # Only its key changed hands; kubeadm's other keys (if any) and the ConfigMap itself stay.
        assert set(applied.json()["data"]) == set(original["data"])
        manifests = _join_control_plane_manifests(joinable, tmp_path / "rootfs")
    finally:  # kubeadm's own content back, for the module's other tests (an unconditional update)
        metadata = {"name": kubeadm_certs.CONFIG_MAP_NAME, "namespace": "kube-system"}
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": original["data"]}
        assert joinable.request("PUT", path, admin=True, body=body).ok
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        image = manifests[component]["spec"]["containers"][0]["image"]
        assert image.endswith(f"/{component}:v{NEXT_PATCH}"), image
    cluster = yaml.safe_load(planned)
    flags = {
        "kube-apiserver": cluster["apiServer"]["extraArgs"],
        "kube-controller-manager": cluster["controllerManager"]["extraArgs"],
        "kube-scheduler": cluster["scheduler"]["extraArgs"],
    }
    for component, extra in flags.items():
        command = _command(manifests[component])
        for argument in extra:
            assert f"--{argument['name']}={argument['value']}" in command, (component, argument)


def test_the_kubelet_configuration_the_program_writes_is_what_kubeadm_init_uploaded(joinable: ControlPlane) -> None:
    # kubeadm init's upload-config kubelet phase (run by the fixture with the planned InitConfiguration)
    # stores the KubeletConfiguration with kubeadm's defaults filled in; every setting the program
    # writes into kube-system/kubelet-config for later joins (kaas.bootstrap.kubeadm_certs) is there, equal.
    response = joinable.request("GET", "/api/v1/namespaces/kube-system/configmaps/kubelet-config", admin=True)
    assert response.ok, response.text
    uploaded = yaml.safe_load(response.json()["data"][kubeadm_certs.KUBELET_CONFIGURATION_KEY])
    ours = kubelet_configuration()
    assert _within(ours, uploaded), (ours, uploaded)


def _within(ours: Any, theirs: Any) -> bool:
    """Every setting of ``ours`` is in ``theirs`` with the same value; Go's ``omitempty`` drops zero
    values (readOnlyPort: 0) from what kubeadm marshals, and kubeadm adds its defaults beside ours."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(
            _within(value, theirs[key]) if key in theirs else value in (0, False, "", None, [], {})
            for key, value in ours.items()
        )
    return bool(ours == theirs)


# ---------------------------------------------------------------------------------
# Server-side dry run of everything the plan creates
#
# Upstream: https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run and
# https://kubernetes.io/docs/concepts/security/pod-security-admission/ (workload objects
# get "would violate PodSecurity" warnings; Pods are refused in enforcing namespaces).


def _kubectl(cp: ControlPlane, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl_bin()), f"--kubeconfig={cp.admin_kubeconfig}", f"--cache-dir={cp.root / 'kube-cache'}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _helm_test_hook(obj: dict[str, Any]) -> bool:
    """Objects only ``helm test`` creates (helm.sh/hook: test), never a release install."""
    hooks = (obj.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook", "")
    return any(hook.strip() in ("test", "test-success") for hook in hooks.split(","))


def _planned_objects(stack: str) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Plain objects of the stack's plan, and each Helm release's rendered objects by namespace."""
    plan = plan_stack(stack)
    objects: list[dict[str, Any]] = []
    charts: dict[str, list[dict[str, Any]]] = {}
    for record in plan.resources:
        if record.type == "kubernetes:helm.sh/v3:Release":
            namespace = plain(record.inputs).get("namespace") or "default"
            for obj in render_release(record):
                if not _helm_test_hook(obj):  # Helm installs into the release namespace unless the object names one
                    charts.setdefault(obj.get("metadata", {}).get("namespace") or namespace, []).append(obj)
        elif record.type.startswith("kubernetes:"):
            objects.append(plain(record.inputs, show_secrets=True))
    return objects, charts


def _apply(cp: ControlPlane, objects: list[dict[str, Any]], *flags: str) -> subprocess.CompletedProcess[str]:
    stream = yaml.safe_dump_all(objects, sort_keys=False)
    return _kubectl(
        cp, "apply", "--server-side", "--force-conflicts", "--field-manager=kaas-test", *flags, "-f", "-", stdin=stream
    )


_APPLIED: set[str] = set()


def _not_yet_applied(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fresh = {json.dumps(o, sort_keys=True): o for o in objects if json.dumps(o, sort_keys=True) not in _APPLIED}
    _APPLIED.update(fresh)
    return list(fresh.values())


@pytest.mark.parametrize("stack", STACKS)
def test_every_planned_object_and_chart_object_is_accepted_by_a_server_side_dry_run(
    control_plane: ControlPlane, stack: str
) -> None:
    objects, charts = _planned_objects(stack)
    rendered = [obj for chart in charts.values() for obj in chart]
    crds = [o for o in objects + rendered if o["kind"] == "CustomResourceDefinition"]
    planned = [o for o in objects if o["kind"] == "Namespace"]
    # A bare Namespace applied by the same field manager would strip the planned one's
    # Pod Security labels (server-side apply removes fields a manager no longer sets).
    namespaces = planned + [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in charts
        if name not in {o["metadata"]["name"] for o in planned}
    ]
    # Created for real: custom resources need their definitions, namespaced objects their
    # namespace. The stacks share most of them: each distinct object is applied once a session.
    crds, namespaces = _not_yet_applied(crds), _not_yet_applied(namespaces)
    for setup in (crds, namespaces):
        if setup:
            checked(_apply(control_plane, setup))
    if crds:
        checked(_kubectl(control_plane, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"))

    failures = []
    plain_objects = [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Namespace")]
    batches = [(None, plain_objects)] + [
        (ns, [o for o in chart if o["kind"] != "CustomResourceDefinition"]) for ns, chart in charts.items()
    ]
    for namespace, batch in batches:
        if not batch:
            continue
        result = _apply(control_plane, batch, "--dry-run=server", *([f"--namespace={namespace}"] if namespace else []))
        if result.returncode != 0 or "would violate PodSecurity" in result.stderr:
            failures.append(f"{namespace or 'plan'}: {result.stderr.strip()}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------
# The serving certificate names what the nodes dial
#
# Upstream: cmd/kubeadm/app/util/pkiutil/pki_helpers.go (GetAPIServerAltNames: the
# controlPlaneEndpoint host, the advertise address, certSANs, the service IP and names);
# Go's crypto/x509 VerifyHostname, which kubeadm and the kubelet use, needs the host in the SANs.


def _dialled_hosts(user_data: str, root: Path) -> set[str]:
    node = install_user_data(user_data, root)
    discovery = kubeadm_documents(node)["JoinConfiguration"]["discovery"]
    if "bootstrapToken" in discovery:
        return {discovery["bootstrapToken"]["apiServerEndpoint"].rsplit(":", 1)[0]}
    path = Path(discovery["file"]["kubeConfigPath"])
    kubeconfig = yaml.safe_load((path if path.is_relative_to(root) else node.path(str(path))).read_text())
    return {urlsplit(c["cluster"]["server"]).hostname or "" for c in kubeconfig["clusters"]}


@pytest.mark.skipif(bool(missing_binaries()), reason="control-plane binaries not built (tools/controlplane/build.sh)")
def test_the_api_server_certificate_kubeadm_generates_names_every_endpoint_the_nodes_and_admins_dial(
    tmp_path: Path,
) -> None:
    plan = bootstrap_plan(STACK)
    master = install_user_data(plan.texts("masterUserData")[0], tmp_path / "master-0")
    copy_shared_pki(master)
    config = master.path(KUBEADM_CONFIG_PATH)  # as planned; only the node paths relocated
    checked(run([binary("kubeadm"), "init", "phase", "certs", "apiserver", f"--config={config}"]))
    pem = (master.path(KUBERNETES_PKI_DIR) / "apiserver.crt").read_bytes()
    sans = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(n) for n in sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    }
    dialled = _dialled_hosts(plan.texts("workerUserData")[0], tmp_path / "worker-0")
    dialled |= _dialled_hosts(plan.texts("masterUserData")[1], tmp_path / "master-1")
    admin = yaml.safe_load(plain(plan.output("adminKubeconfig"), show_secrets=True))
    dialled |= {urlsplit(c["cluster"]["server"]).hostname or "" for c in admin["clusters"]}
    assert dialled and dialled <= names, (dialled, names)


# ---------------------------------------------------------------------------------
# The kubelet's configuration
#
# Upstream: cmd/kubeadm/app/util/config/common.go (ValidateConfig: `kubeadm config validate`
# decodes every document strictly: an unknown field or a wrong type is an error) and
# cmd/kubeadm/app/componentconfigs/kubelet.go (Default: warns "The recommended value for ..."
# when anonymous auth, webhook authn/authz or the read-only port differ from its secure
# defaults). kubeadm does not parse the TLS names: the kubelet does, at start
# (cmd/kubelet/app/server.go InitializeTLS: cliflag.TLSCipherSuites, cliflag.TLSVersion), with
# the same k8s.io/component-base/cli/flag functions as the API server's --tls-cipher-suites
# and --tls-min-version (k8s.io/apiserver pkg/server/options/serving.go), which the fixture's
# real kube-apiserver runs with.

KUBELET_HARDENING = {
    "tlsMinVersion": "VersionTLS12",
    "tlsCipherSuites": list(TLS_CIPHER_SUITES),
    "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}},
    "authorization": {"mode": "Webhook"},
    "readOnlyPort": 0,
}


def _init_master_config(stack: str, root: Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    plan = bootstrap_plan(stack)
    nodes = [install_user_data(text, root / str(i)) for i, text in enumerate(plan.texts("masterUserData"))]
    [node] = [n for n in nodes if "KubeletConfiguration" in kubeadm_documents(n)]
    return node.path(KUBEADM_CONFIG_PATH), kubeadm_documents(node)


def _kubeadm_validate(config: Path) -> subprocess.CompletedProcess[str]:
    return run([binary("kubeadm"), "config", "validate", f"--config={config}"])


def _subset(wanted: dict[str, Any], got: dict[str, Any]) -> bool:
    return all(
        _subset(value, got.get(key) or {}) if isinstance(value, dict) else got.get(key) == value
        for key, value in wanted.items()
    )


@pytest.mark.skipif(bool(missing_binaries()), reason="control-plane binaries not built (tools/controlplane/build.sh)")
@pytest.mark.parametrize("stack", ["minimal", *STACKS])
def test_kubeadm_accepts_the_hardened_kubelet_configuration_and_recommends_nothing(stack: str, tmp_path: Path) -> None:
    config, docs = _init_master_config(stack, tmp_path)
    result = _kubeadm_validate(config)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "recommended value" not in output and "strict" not in output, output
    assert _subset(KUBELET_HARDENING, docs["KubeletConfiguration"]), docs["KubeletConfiguration"]


@pytest.mark.skipif(bool(missing_binaries()), reason="control-plane binaries not built (tools/controlplane/build.sh)")
def test_kubeadm_refuses_or_flags_a_weakened_or_misspelt_kubelet_configuration(tmp_path: Path) -> None:
    """The check above can fail: kubeadm refuses a misspelt field or a wrong type and names a weakening."""
    config, docs = _init_master_config(STACK, tmp_path)
    kubelet = docs["KubeletConfiguration"]
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "misspelt": ({k: v for k, v in kubelet.items() if k != "tlsMinVersion"} | {"tlsMinVerison": "VersionTLS12"},
                     'unknown field "tlsMinVerison"'),
        "wrong type": (kubelet | {"readOnlyPort": "zero"}, "readOnlyPort of type int32"),
        "anonymous": (kubelet | {"authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": True}}},
                      '"authentication.anonymous.enabled"'),
        "no webhook authn": (kubelet | {"authentication": {"anonymous": {"enabled": False},
                                                           "webhook": {"enabled": False}}},
                             '"authentication.webhook.enabled"'),
        "always allow": (kubelet | {"authorization": {"mode": "AlwaysAllow"}}, '"authorization.mode"'),
        "read-only port": (kubelet | {"readOnlyPort": 10255}, '"readOnlyPort"'),
    }  # fmt: skip
    for case, (mutated, message) in cases.items():
        write(config, yaml.safe_dump_all([*(d for k, d in docs.items() if k != "KubeletConfiguration"), mutated]))
        result = _kubeadm_validate(config)
        assert message in result.stdout + result.stderr, (case, result.stdout + result.stderr)


def test_joining_kubelets_get_the_hardened_configuration_with_ciphers_the_api_server_accepts(
    joinable: ControlPlane,
) -> None:
    """What ``kubeadm init`` uploaded (the kubelet-config ConfigMap every joining kubelet reads) keeps the
    hardening, and its TLS names are those the running kube-apiserver parsed with the same functions."""
    result = checked(_kubectl(joinable, "-n", "kube-system", "get", "configmap", "kubelet-config", "-o", "json"))
    uploaded = yaml.safe_load(json.loads(result.stdout)["data"]["kubelet"])
    # kubeadm re-marshals the typed struct: readOnlyPort 0 is dropped (``omitempty``; 0 is the
    # field's zero value and default, "0 (disabled)", kubelet config/v1beta1 types.go).
    assert uploaded.get("readOnlyPort", 0) == 0
    assert _subset({k: v for k, v in KUBELET_HARDENING.items() if k != "readOnlyPort"}, uploaded), uploaded
    assert uploaded["authentication"]["x509"]["clientCAFile"].endswith("/pki/ca.crt")  # kubeadm's default, kept
    args = dict(a.removeprefix("--").split("=", 1) for a in joinable.apiserver_command if a.startswith("--"))
    assert args["tls-cipher-suites"].split(",") == uploaded["tlsCipherSuites"]
    assert args["tls-min-version"] == uploaded["tlsMinVersion"]


def test_the_dry_run_reports_what_the_cluster_would_refuse(control_plane: ControlPlane) -> None:
    """The check above can fail: an unknown field, a Pod that a restricted namespace refuses, a
    Deployment whose pods it would refuse (a warning only, which the check treats as a failure)."""
    namespace = f"restricted-{uuid.uuid4().hex[:8]}"
    label = {"pod-security.kubernetes.io/enforce": "restricted"}
    checked(
        _apply(
            control_plane, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": label}}]
        )
    )
    pod_spec = {
        "containers": [{"name": "c", "image": "registry.example/app:1", "securityContext": {"privileged": True}}]
    }
    typo = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "typo"},
            "provisioner": "cinder.csi.openstack.org", "reclaimPolicie": "Delete"}  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": pod_spec}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec},
        },
    }
    try:
        refused_typo = _apply(control_plane, [typo], "--dry-run=server")
        refused_pod = _apply(control_plane, [pod], "--dry-run=server")
        warned = _apply(control_plane, [deployment], "--dry-run=server")
    finally:
        _kubectl(control_plane, "delete", "namespace", namespace, "--wait=false")
    assert refused_typo.returncode != 0 and "reclaimPolicie" in refused_typo.stderr, refused_typo.stderr
    assert refused_pod.returncode != 0 and "violates PodSecurity" in refused_pod.stderr, refused_pod.stderr
    assert warned.returncode == 0 and "would violate PodSecurity" in warned.stderr, warned.stderr


# ---------------------------------------------------------------------------------
# Join tokens minted by kaas roll (issue 17)
#
# Upstream: plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go (a token Secret in
# kube-system authenticates "<id>.<secret>" as system:bootstrap:<id> with its extra groups,
# until its expiration) and pkg/controller/bootstrap/tokencleaner.go (expired ones are deleted;
# kubeadm runs the controller manager with --controllers=*,bootstrapsigner,tokencleaner).


def _whoami(cp: ControlPlane, token: str) -> int:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return cp.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token=token, body=review).status_code


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _join_tokens(cp: ControlPlane, directory: Path, ttl: timedelta = JOIN_TOKEN_TTL) -> JoinTokens:
    return JoinTokens(kube_client(cp.admin_kubeconfig.read_text(), directory).api, ttl=ttl)


def test_a_roll_join_token_is_a_kubeadm_node_token_the_api_server_accepts_until_the_roll_deletes_it(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    tokens = _join_tokens(control_plane, tmp_path)
    token = tokens.create("kaas roll: join of t1-worker-9")
    assert _until(lambda: _whoami(control_plane, token.value) == 201, 10)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = control_plane.request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token=token.value, body=review
    )
    user = answer.json()["status"]["userInfo"]
    assert user["username"] == f"system:bootstrap:{token.token_id}"
    assert {"system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"} <= set(user["groups"])
    # kubeadm reads it as one of its tokens: the ID, the expiry, the usages, the description.
    listed = checked(control_plane.kubeadm("token", "list", f"--kubeconfig={control_plane.admin_kubeconfig}"))
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(token.token_id)]
    assert "authentication,signing" in row and "kaas roll: join of t1-worker-9" in row
    assert token.expires.strftime("%Y-%m-%dT%H:%M") in row
    assert token.token_id in tokens.created()
    assert token.token_id in tokens.delete_all()
    assert _until(lambda: _whoami(control_plane, token.value) == 401, 10)
    assert token.token_id not in tokens.created()


def test_a_roll_join_token_expires_and_the_token_cleaner_deletes_it(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    tokens = _join_tokens(control_plane, tmp_path, ttl=timedelta(seconds=8))
    token = tokens.create("kaas roll: expiry test")
    assert _until(lambda: _whoami(control_plane, token.value) == 201, 5)
    assert _until(lambda: _whoami(control_plane, token.value) == 401, 20)
    refused_at = datetime.now(UTC)
    assert refused_at >= token.expires - timedelta(seconds=1)  # refused for its expiry (second precision)
    assert _until(lambda: token.token_id not in tokens.created(), 60), "the token cleaner did not delete it"
