"""The PKI: real certificates from the offline pulumi-tls emulation, token format, CA hash, secrets."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kaas.bootstrap.pki import BOOTSTRAP_TOKEN_PATTERN, bootstrap_token, discovery_ca_hash
from kaas.offline import Secret, run_plan
from kaas.offline.planfile import plain
from tests.bootstrap_fixtures import bootstrap_plan, bootstrap_program


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
    except Exception:
        return False
    return cert.issuer == ca.subject


def test_etcd_member_certs_are_signed_by_the_etcd_ca_with_ip_name_and_loopback_sans() -> None:
    bp = bootstrap_plan("acme-prod")
    ca = _cert(bp.output("etcdCaCertPem"))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = [f"acme-prod-etcd-{i}" for i in range(5)]
    ips = [f"10.20.0.{16 + i}" for i in range(5)]
    for pem, name, ip in zip(bp.output("etcdMemberCertPems"), names, ips, strict=True):
        cert = _cert(pem)
        assert _signed_by(cert, ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == {name, "localhost"}
        assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {ip, "127.0.0.1"}
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_admin_client_cert_is_in_kubeadms_admin_group_and_signed_by_the_kubernetes_ca() -> None:
    bp = bootstrap_plan("acme-prod")
    admin = _cert(bp.output("adminCertPem"))
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "kubeadm:cluster-admins"
    ]
    assert _signed_by(admin, _cert(bp.output("caCertPem")))
    assert not _signed_by(admin, _cert(bp.output("etcdCaCertPem")))


def test_the_roll_has_its_own_etcd_client_certificate_signed_by_the_etcd_client_ca() -> None:
    bp = bootstrap_plan("acme-prod")
    roll = _cert(bp.output("etcdClientCertPem"))
    apiserver = _cert(bp.output("apiserverEtcdClientCertPem"))
    assert roll.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kaas-roll"
    assert roll.public_key() != apiserver.public_key()
    assert _signed_by(roll, _cert(bp.output("etcdCaCertPem")))
    assert not _signed_by(roll, _cert(bp.output("etcdPeerCaCertPem")))  # no peer of the raft cluster
    assert list(roll.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    key = serialization.load_pem_private_key(plain(bp.output("etcdClientKeyPem"), show_secrets=True).encode(), None)
    assert key.public_key() == roll.public_key()


def test_keystone_auth_serving_cert_covers_loopback() -> None:
    bp = bootstrap_plan("acme-prod")
    cert = _cert(bp.output("keystoneAuthCertPem"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert _signed_by(cert, _cert(bp.output("caCertPem")))


def test_bootstrap_token_matches_kubeadm_format() -> None:
    for stack in ("dev", "acme-prod"):
        token = plain(bootstrap_plan(stack).output("bootstrapToken"), show_secrets=True)
        assert BOOTSTRAP_TOKEN_PATTERN.match(token), token
    with pytest.raises(ValueError):
        bootstrap_token("ABCDEF", "0123456789abcdef")


def test_ca_cert_hash_equals_openssl_computation(tmp_path: object) -> None:
    """kubeadm's documented recipe: openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256."""
    bp = bootstrap_plan("acme-prod")
    ca_pem = bp.output("caCertPem")
    pubkey = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout"], input=ca_pem.encode(), capture_output=True, check=True
    )
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey.stdout, capture_output=True, check=True
    )
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-hex"], input=der.stdout, capture_output=True, check=True)
    expected = "sha256:" + digest.stdout.decode().split()[-1]
    assert bp.output("caCertHash") == expected == discovery_ca_hash(ca_pem)


def test_every_key_token_kubeconfig_and_user_data_is_secret() -> None:
    outputs = bootstrap_plan("acme-prod").plan.outputs
    for key in (
        "adminKubeconfig",
        "bootstrapToken",
        "keystoneAuthKeyPem",
        "etcdCaKeyPem",
        "etcdClientKeyPem",
        "serviceAccountKeyPem",
        "kubernetesCaKeyPem",
        "frontProxyCaKeyPem",
    ):
        assert isinstance(outputs[key], Secret), key
    for key in ("etcdMemberKeyPems", "etcdUserData", "masterUserData", "workerUserData"):
        values = (
            outputs[key].value if isinstance(outputs[key], Secret) else outputs[key]
        )  # a secret list or a list of secrets
        assert values and all(isinstance(v, Secret) for v in values), key
    assert not isinstance(outputs["caCertPem"], Secret)


def test_private_keys_and_token_parts_are_secret_outputs_of_their_resources() -> None:
    plan = bootstrap_plan("acme-prod").plan
    keys = plan.by_type("tls:index/privateKey:PrivateKey")
    assert (
        len(keys) == 4 + 1 + 5 + 5 + 5
    )  # CAs, service account, etcd members and peers, etcd clients (API server, roll) + admin + break-glass + keystone
    assert all("privateKeyPem" in k.options["additionalSecretOutputs"] for k in keys)
    for record in plan.by_type("tls:index/locallySignedCert:LocallySignedCert"):
        assert isinstance(record.inputs["caPrivateKeyPem"], Secret)
    tokens = plan.by_type("random:index/randomString:RandomString")
    assert len(tokens) == 2 and all(t.options["additionalSecretOutputs"] == ["result"] for t in tokens)


def test_two_plans_produce_identical_certificates() -> None:
    spec = bootstrap_plan("dev").spec
    again = run_plan(lambda: bootstrap_program(spec), stack=spec.name)
    first = bootstrap_plan("dev").plan.outputs
    for key in ("caCertPem", "etcdMemberCertPems", "adminKubeconfig", "caCertHash", "etcdUserData"):
        assert again.outputs[key] == first[key], key


def test_pki_resources_are_children_of_the_pki_inside_the_bootstrap_component() -> None:
    plan = bootstrap_plan("dev").plan
    (bootstrap,) = plan.by_type("kaas:bootstrap:Bootstrap")
    (pki,) = plan.by_type("kaas:bootstrap:Pki")
    assert pki.parent == bootstrap.urn
    for record in plan.resources:
        if record.type.startswith(("tls:", "random:")) and record.name != "dev-etcd-backup-key":
            assert record.parent == pki.urn, record.urn


def test_etcd_backup_key_is_a_protected_secret_that_reaches_only_the_etcd_nodes() -> None:
    bp = bootstrap_plan("dev")
    key = bp.plan.find("random:index/randomPassword:RandomPassword", "dev-etcd-backup-key")
    assert key.parent == bp.plan.by_type("kaas:bootstrap:Bootstrap")[0].urn
    assert key.options["protect"] is True and "result" in key.options["additionalSecretOutputs"]
    assert key.inputs["length"] == 64
    value = plain(bp.output("etcdBackupKey"), show_secrets=True)
    assert isinstance(bp.output("etcdBackupKey"), Secret) and len(value) == 64
    assert all(f'BACKUP_ENCRYPTION_KEY="{value}"' in text for text in bp.texts("etcdUserData"))
    assert not any(value in text for text in bp.texts("masterUserData") + bp.texts("workerUserData"))
