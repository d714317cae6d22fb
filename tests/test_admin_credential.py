"""The program's own credential: kubeadm's admin.conf identity, one year, renewed by ``pulumi up``, revocable.

``adminKubeconfig`` (and the Kubernetes provider, and the API gate) carry a client
certificate of the group ``kubeadm:cluster-admins``, which ``kubeadm init`` binds to
cluster-admin with the ClusterRoleBinding of the same name (kubeadm >= 1.29,
cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go). Unlike ``system:masters`` it passes
through RBAC: deleting the binding revokes it, which the real kube-apiserver shows below.
"""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
import time

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kaas.bootstrap import pki
from kaas.offline import Secret
from kaas.offline.plan import plan_stack
from kaas.offline.planfile import plain
from kaas.readiness import SCRIPT
from kaas.spec.loader import REPO_ROOT
from tests.bootstrap_fixtures import bootstrap_plan
from tests.controlplane import ADMIN_BINDING_PATH, ControlPlane, admin_cluster_role_binding


def _client_certificate(kubeconfig: str) -> x509.Certificate:
    (user,) = yaml.safe_load(kubeconfig)["users"]
    return x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))


def _groups(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_the_admin_certificate_is_kubeadms_admin_identity_for_one_year() -> None:
    output = bootstrap_plan("acme-prod").output("adminKubeconfig")
    assert isinstance(output, Secret)
    cert = _client_certificate(output.value)
    assert _groups(cert) == ["kubeadm:cluster-admins"]
    assert "system:masters" not in _groups(cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365)


def test_the_admin_certificate_renews_on_a_pulumi_up_in_its_last_60_days() -> None:
    plan = bootstrap_plan("acme-prod").plan
    (admin,) = [r for r in plan.by_type("tls:index/locallySignedCert:LocallySignedCert") if r.name.endswith("-admin")]
    assert admin.inputs["validityPeriodHours"] == 365 * 24
    assert admin.inputs["earlyRenewalHours"] == 60 * 24
    assert pki.ADMIN_VALIDITY_HOURS < pki.LEAF_VALIDITY_HOURS


def test_the_credential_stays_secret_in_outputs_and_in_the_api_gate() -> None:
    plan = plan_stack("acme-prod")
    assert isinstance(plan.outputs["adminKubeconfig"], Secret)
    (gate,) = [r for r in plan.by_type("command:local:Command") if r.name.endswith("-wait-for-api")]
    environment = gate.inputs["environment"]
    key = environment["KAAS_CLIENT_KEY_PEM"]
    assert isinstance(key, Secret) and "PRIVATE KEY" in key.value
    assert not any("PRIVATE KEY" in str(v) for k, v in environment.items() if k != "KAAS_CLIENT_KEY_PEM")
    assert f"--authorised {ADMIN_BINDING_PATH}" in plain(gate.inputs["create"], show_secrets=True)
    # The gate's certificate is the kubeconfig's.
    cert_pem = plain(environment["KAAS_CLIENT_CERT_PEM"], show_secrets=True)
    kubeconfig_cert = _client_certificate(plan.outputs["adminKubeconfig"].value)
    assert x509.load_pem_x509_certificate(cert_pem.encode()) == kubeconfig_cert


# --- the real kube-apiserver -------------------------------------------------------------


def _wait_for_status(cp: ControlPlane, path: str, status: int, timeout: float = 20) -> int:
    """RBAC reads bindings from an informer: a change is seen within moments, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        got = cp.request("GET", path, admin=True).status_code
        if got == status or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _gate(cp: ControlPlane, timeout: float) -> subprocess.CompletedProcess[str]:
    cert, key = cp.admin_cert
    environment = {
        **os.environ,
        "KAAS_CA_PEM": cp.ca_file.read_text(),
        "KAAS_CLIENT_CERT_PEM": open(cert).read(),  # noqa: SIM115
        "KAAS_CLIENT_KEY_PEM": open(key).read(),  # noqa: SIM115
    }
    return subprocess.run(
        [sys.executable, SCRIPT, cp.server, "--timeout", str(timeout), "--interval", "0.5",
         "--authorised", ADMIN_BINDING_PATH],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=timeout + 30,
    )  # fmt: skip


@pytest.mark.xdist_group("controlplane")
def test_the_api_server_authorises_the_admin_only_through_kubeadms_binding(control_plane: ControlPlane) -> None:
    cp = control_plane
    review = cp.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        admin=True,
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    ).json()["status"]["userInfo"]
    assert review["username"] == pki.ADMIN_COMMON_NAME
    assert "kubeadm:cluster-admins" in review["groups"] and "system:masters" not in review["groups"]
    assert cp.request("GET", "/api/v1/namespaces/kube-system/secrets", admin=True).status_code == 200
    assert _gate(cp, timeout=20).returncode == 0

    deleted = cp.request("DELETE", ADMIN_BINDING_PATH, super_admin=True)
    assert deleted.status_code == 200, deleted.text
    try:
        # Revoked: the same certificate, still valid, is refused everything the binding gave.
        assert _wait_for_status(cp, "/api/v1/namespaces/kube-system/secrets", 403) == 403
        assert cp.request("GET", ADMIN_BINDING_PATH, admin=True).status_code == 403
        # And the API gate of the first `pulumi up` keeps waiting while the binding is missing.
        refused = _gate(cp, timeout=3)
        assert refused.returncode == 1 and f"HTTP 403 for {ADMIN_BINDING_PATH}" in refused.stderr, refused.stderr
    finally:
        recreated = cp.request(
            "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", super_admin=True,
            body=admin_cluster_role_binding(),
        )  # fmt: skip
        assert recreated.status_code == 201, recreated.text
    assert _wait_for_status(cp, "/api/v1/namespaces/kube-system/secrets", 200) == 200
