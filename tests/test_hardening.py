"""Smaller hardening: control-plane TLS and profiling, the tenants' Prometheus."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaas.bootstrap.userdata.kubeadm import KUBEADM_CONFIG_PATH
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
