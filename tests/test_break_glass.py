"""The break-glass credential: short-lived, for a group an ordinary binding makes cluster-admin.

A ``system:masters`` client certificate bypasses RBAC and cannot be revoked before it
expires (Kubernetes docs, "Certificates and Certificate Signing Requests":
system:masters is a break-glass group with unrestricted access). The break-glass
kubeconfig instead carries a certificate of ``<provider>:break-glass``, valid for 8
hours, that is cluster-admin only through the ClusterRoleBinding of the same name:
deleting that binding revokes it at once, and the next ``pulumi up`` after it expires
issues a new one.
"""

from __future__ import annotations

import base64
import datetime

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaas.bootstrap import pki
from kaas.offline import Secret
from kaas.offline.planfile import plain
from kaas.services.objects import break_glass_cluster_role_binding
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import make_spec
from tests.services_helpers import default_plan


def client_certificate(kubeconfig: str) -> x509.Certificate:
    user = yaml.safe_load(kubeconfig)["users"][0]["user"]
    return x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))


def test_break_glass_certificate_is_short_lived_revocable_and_signed_by_the_cluster_ca() -> None:
    bp = bootstrap_plan("minimal")
    output = bp.output("breakGlassKubeconfig")
    assert isinstance(output, Secret)
    cert = client_certificate(output.value)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(hours=8)
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["kaas:break-glass"] and "system:masters" not in groups
    ca = x509.load_pem_x509_certificate(bp.output("caCertPem").encode())
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert pki.BREAK_GLASS_VALIDITY_HOURS == 8
    # The program's own credential is a different certificate.
    admin = client_certificate(bp.output("adminKubeconfig").value)
    assert admin.serial_number != cert.serial_number


def test_the_group_is_cluster_admin_only_through_a_deletable_binding() -> None:
    plan = default_plan()
    [binding] = [r for r in plan.resources if r.name == "t1-break-glass"]
    manifest = plain(binding.inputs, show_secrets=True)
    assert manifest["metadata"]["name"] == "kaas:break-glass"
    assert manifest["subjects"] == [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "kaas:break-glass"}
    ]
    assert manifest["roleRef"]["name"] == "cluster-admin"
    custom = break_glass_cluster_role_binding(make_spec(provider_name="acme"))
    assert custom["subjects"][0]["name"] == "acme:break-glass"
