"""Smaller hardening: control-plane TLS and profiling, the tenants' Prometheus."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaas.bootstrap.hardening import TLS_CIPHER_SUITES
from kaas.bootstrap.userdata.kubeadm import CONTROL_PLANE_HARDENING, KUBEADM_CONFIG_PATH
from kaas.services import values
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import make_spec

# Go crypto/tls CipherSuites() (the secure list, src/crypto/tls/cipher_suites.go): ECDHE + AEAD for TLS 1.2.
GO_SECURE_TLS12_AEAD = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


def _cluster_configuration(stack: str) -> dict[str, Any]:
    doc = yaml.safe_load(bootstrap_plan(stack).texts("masterUserData")[0])
    content = next(f["content"] for f in doc["write_files"] if f["path"] == KUBEADM_CONFIG_PATH)
    return next(d for d in yaml.safe_load_all(content) if d["kind"] == "ClusterConfiguration")


@pytest.mark.parametrize("component", ["apiServer", "controllerManager", "scheduler"])
def test_control_plane_components_run_without_profiling_and_with_tls12_aead_only(component: str) -> None:
    config = _cluster_configuration("acme-prod")
    args = {a["name"]: a["value"] for a in config[component]["extraArgs"]}
    assert args["profiling"] == "false"
    assert args["tls-min-version"] == "VersionTLS12"
    suites = args["tls-cipher-suites"].split(",")
    assert suites and set(suites) <= GO_SECURE_TLS12_AEAD


def test_tenants_service_monitors_cannot_read_prometheus_files() -> None:
    assert values.app_prometheus_spec(make_spec())["arbitraryFSAccessThroughSMs"] == {"deny": True}


def _kubelet_configuration(stack: str) -> dict[str, Any]:
    for text in bootstrap_plan(stack).texts("masterUserData"):
        doc = yaml.safe_load(text)
        content = next(f["content"] for f in doc["write_files"] if f["path"] == KUBEADM_CONFIG_PATH)
        for document in yaml.safe_load_all(content):
            if document["kind"] == "KubeletConfiguration":
                return dict(document)
    raise AssertionError("no master carries the KubeletConfiguration")


def test_kubelets_serve_tls12_aead_only_and_nothing_anonymous() -> None:
    """The kubelet's server as the control plane's. Its clients are Go (API server, metrics-server,
    Prometheus): they offer TLS 1.3 and these ECDHE + AEAD suites by default, so nothing they need is
    left out; the kubelet's serving key (serverTLSBootstrap) is ECDSA P-256, hence the ECDSA suites.
    kubeadm's own checks of this document: tests/test_controlplane.py."""
    kubelet = _kubelet_configuration("acme-prod")
    assert kubelet["tlsMinVersion"] == CONTROL_PLANE_HARDENING["tls-min-version"] == "VersionTLS12"
    assert kubelet["tlsCipherSuites"] == list(TLS_CIPHER_SUITES)
    assert set(kubelet["tlsCipherSuites"]) <= GO_SECURE_TLS12_AEAD
    assert any("ECDSA" in s for s in kubelet["tlsCipherSuites"]) and any(
        "_RSA_" in s for s in kubelet["tlsCipherSuites"]
    )
    assert kubelet["authentication"] == {"anonymous": {"enabled": False}, "webhook": {"enabled": True}}
    assert kubelet["authorization"] == {"mode": "Webhook"}
    assert kubelet["readOnlyPort"] == 0
