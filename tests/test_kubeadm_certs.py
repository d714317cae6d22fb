"""The kubeadm-certs Secret the program declares for the updates that build masters (kaas.bootstrap.kubeadm_certs).

kubeadm's side (its real ``download-certs`` phase against the real API server) is in
tests/test_controlplane.py; here: the format's invariants and where the Secret appears in
offline plans of acme-prod (its recorded rollout, a Kubernetes patch bump, a heal).
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
import yaml

from kaas.bootstrap import kubeadm_certs
from kaas.bootstrap.userdata.kubeadm import ControlPlaneCertificates
from kaas.cluster_plan import make_cluster_plan
from kaas.offline import Plan, plan_spec
from kaas.offline.engine import Secret
from kaas.offline.planfile import plain
from kaas.rollout.record import load_record, record_path
from kaas.spec import parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import cloud_config_kubeadm, merge

INSTANCE = "openstack:compute/instance:Instance"
SECRET = "kubernetes:core/v1:Secret"
ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
ACME_SPEC = parse_spec(ACME, "acme-prod")
RECORDED = load_record(record_path("acme-prod"), ACME_SPEC)
PATCH_BUMP = parse_spec(merge(ACME, {"versions": {"kubernetes": "1.34.9"}}), "<acme-prod patch bump>")
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

# cmd/kubeadm/app/phases/copycerts/copycerts.go (v1.34.2) certsToTransfer with an external etcd.
KUBEADM_DATA_KEYS = {
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "sa.pub",
    "sa.key",
    "external-etcd-ca.crt",
    "external-etcd.crt",
    "external-etcd.key",
}


def _certificates() -> ControlPlaneCertificates:
    names = [f.name for f in ControlPlaneCertificates.__dataclass_fields__.values()]
    return ControlPlaneCertificates(**{n: f"-----BEGIN X-----\n{n}\n-----END X-----\n" for n in names})


def test_every_file_kubeadm_downloads_decrypts_with_the_key_to_the_planned_content() -> None:
    certificates = _certificates()
    data = kubeadm_certs.secret_data(certificates, KEY)
    assert set(data) == KUBEADM_DATA_KEYS
    files = certificates.files()
    for name, ours in kubeadm_certs.CERTS_TO_TRANSFER.items():
        assert kubeadm_certs.decrypt(KEY, base64.b64decode(data[name])) == files[ours].encode()


def test_the_nonce_is_deterministic_and_differs_per_file_and_plaintext() -> None:
    certificates = _certificates()
    assert kubeadm_certs.secret_data(certificates, KEY) == kubeadm_certs.secret_data(certificates, KEY)
    nonces = {
        base64.b64decode(v)[: kubeadm_certs.NONCE_BYTES] for v in kubeadm_certs.secret_data(certificates, KEY).values()
    }
    assert len(nonces) == len(KUBEADM_DATA_KEYS)
    assert kubeadm_certs.nonce(KEY, "ca.key", b"a") != kubeadm_certs.nonce(KEY, "ca.key", b"b")
    assert kubeadm_certs.nonce(KEY, "ca.key", b"a") != kubeadm_certs.nonce(KEY, "sa.key", b"a")
    other = KEY[::-1]
    assert kubeadm_certs.nonce(KEY, "ca.key", b"a") != kubeadm_certs.nonce(other, "ca.key", b"a")


def test_a_wrong_key_does_not_decrypt() -> None:
    data = kubeadm_certs.secret_data(_certificates(), KEY)
    with pytest.raises(Exception, match=""):
        kubeadm_certs.decrypt(KEY[::-1], base64.b64decode(data["ca.key"]))


def _secrets(plan: Plan) -> list[Any]:
    return [r for r in plan.by_type(SECRET) if r.name.endswith("-kubeadm-certs")]


def _master_dependencies(plan: Plan) -> dict[str, list[str]]:
    return {
        r.name: [d for d in r.dependencies if d.endswith("kubernetes:core/v1:Secret::acme-prod-kubeadm-certs")]
        for r in plan.by_type(INSTANCE)
        if "-master-" in r.name
    }


@pytest.fixture(scope="module")
def master_rebuild() -> Plan:
    """The patch bump's first step: acme-prod-master-0 rebuilt in place (a join)."""
    return plan_spec(PATCH_BUMP, recorded=RECORDED)


def test_an_update_that_rebuilds_a_master_declares_the_secret_the_master_waits_for(master_rebuild: Plan) -> None:
    assert master_rebuild.outputs["rollout"]["step"] == {"acme-prod-master-0": "replace"}
    (secret,) = _secrets(master_rebuild)
    assert secret.inputs["metadata"]["name"] == "kubeadm-certs"
    assert secret.inputs["metadata"]["namespace"] == "kube-system"
    assert isinstance(secret.inputs["data"], Secret)  # the encrypted CA keys stay a Pulumi secret
    assert set(plain(secret.inputs["data"], show_secrets=True)) == KUBEADM_DATA_KEYS
    assert "data" in secret.options["additionalSecretOutputs"]
    urn = secret.urn
    assert _master_dependencies(master_rebuild) == {
        "acme-prod-master-0": [urn],
        "acme-prod-master-1": [],
        "acme-prod-master-2": [],
    }
    # Its provider waits for its own gate, which does not wait for the master it unblocks.
    gate = master_rebuild.find("command:local:Command", "acme-prod-kubeadm-certs-wait-for-api-before-join")
    assert not [d for d in gate.dependencies if "Instance" in d]
    # The cluster's gate still waits for every master (and so for the Secret).
    (cluster_gate,) = [r for r in master_rebuild.by_type("command:local:Command") if r.name.endswith("-wait-for-api")]
    assert sum("compute/instance:Instance::acme-prod-master-" in d for d in cluster_gate.dependencies) == 3


def test_the_secret_data_decrypts_with_the_joining_masters_key_to_the_clusters_ca(master_rebuild: Plan) -> None:
    (secret,) = _secrets(master_rebuild)
    data = plain(secret.inputs["data"], show_secrets=True)
    (master,) = [r for r in master_rebuild.by_type(INSTANCE) if r.name == "acme-prod-master-0"]
    user_data = plain(master.inputs["userData"], show_secrets=True)
    (key,) = {line.split(":", 1)[1].strip() for line in user_data.splitlines() if "certificateKey:" in line}
    ca = kubeadm_certs.decrypt(key, base64.b64decode(data["ca.crt"])).decode()
    assert ca == master_rebuild.outputs["caCertificate"]
    assert "PRIVATE KEY" in kubeadm_certs.decrypt(key, base64.b64decode(data["ca.key"])).decode()


def test_the_plan_is_deterministic(master_rebuild: Plan) -> None:
    again = plan_spec(PATCH_BUMP, recorded=RECORDED)
    (first,), (second,) = _secrets(master_rebuild), _secrets(again)
    assert plain(first.inputs, show_secrets=True) == plain(second.inputs, show_secrets=True)
    assert [(r.urn, plain(r.inputs, show_secrets=True)) for r in master_rebuild.resources] == [
        (r.urn, plain(r.inputs, show_secrets=True)) for r in again.resources
    ]


def test_a_healed_master_joins_and_a_healed_worker_or_the_first_deployment_has_none() -> None:
    # kaas roll --heal (config kaas:heal): the same joining_masters the program declares the Secret for.
    def joining(recorded: Any, healed: tuple[str, ...] = ()) -> list[str]:
        plan = make_cluster_plan(ACME_SPEC, recorded, healed=healed)
        return [n.name for n in kubeadm_certs.joining_masters(plan)]

    assert joining(RECORDED, ("acme-prod-master-1",)) == ["acme-prod-master-1"]
    assert joining(RECORDED, ("acme-prod-worker-1",)) == []
    assert joining(RECORDED) == []
    assert joining(None) == []  # the first deployment: kubeadm init --upload-certs uploads them


@pytest.mark.parametrize("update", ["no master built", "first deployment", "workers only"])
def test_an_update_without_a_joining_master_has_no_secret(update: str) -> None:
    if update == "no master built":
        plan = plan_spec(ACME_SPEC, recorded=RECORDED)
    elif update == "first deployment":
        plan = plan_spec(ACME_SPEC, recorded=None)
    else:
        workers = ACME["workers"]["count"] + 1
        plan = plan_spec(parse_spec(merge(ACME, {"workers": {"count": workers}}), "x"), recorded=RECORDED)
        assert any("-worker-" in n for n in plan.outputs["rollout"]["step"])
    assert _secrets(plan) == []
    assert _config_maps(plan) == [] and _kubelet_config_maps(plan) == []
    assert not [r for r in plan.resources if "kubeadm-certs-wait" in r.name or r.name.endswith("kubeadm-certs-k8s")]
    assert all(deps == [] for deps in _master_dependencies(plan).values())


# --- kube-system/kubeadm-config: the ClusterConfiguration a joining master is built from ---------


def _config_maps(plan: Plan) -> list[Any]:
    return [r for r in plan.by_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-kubeadm-config")]


def test_an_update_that_rebuilds_a_master_moves_the_clusters_kubeadm_config_to_its_version(
    master_rebuild: Plan,
) -> None:
    (config_map,) = _config_maps(master_rebuild)
    assert config_map.inputs["metadata"] == {
        "name": "kubeadm-config",
        "namespace": "kube-system",
        "annotations": {"pulumi.com/patchForce": "true"},  # kubeadm's field manager owns the key first
    }
    # kubeadm's ConfigMap: never deleted by Pulumi (every kubeadm join reads it).
    assert config_map.options["retainOnDelete"] is True
    assert set(config_map.inputs["data"]) == {"ClusterConfiguration"}  # its other keys stay kubeadm's
    assert not isinstance(config_map.inputs["data"]["ClusterConfiguration"], Secret)  # a preview shows it
    (cluster,) = yaml.safe_load_all(config_map.inputs["data"]["ClusterConfiguration"])
    assert cluster["kind"] == "ClusterConfiguration" and cluster["kubernetesVersion"] == "v1.34.9"
    # The same ClusterConfiguration the first master's user data holds, at the new version.
    (master,) = [r for r in master_rebuild.by_type(INSTANCE) if r.name == "acme-prod-master-0"]
    assert config_map.urn in master.dependencies
    first = plan_spec(ACME_SPEC, recorded=None).by_type(INSTANCE)
    (init,) = [r for r in first if r.name == "acme-prod-master-0"]
    planned_first = cloud_config_kubeadm(yaml.safe_load(plain(init.inputs["userData"], show_secrets=True)))[
        "ClusterConfiguration"
    ]
    assert {**planned_first, "kubernetesVersion": "v1.34.9"} == cluster


def test_an_update_without_a_joining_master_leaves_kubeadm_config_to_kubeadm() -> None:
    assert _config_maps(plan_spec(ACME_SPEC, recorded=RECORDED)) == []
    assert _config_maps(plan_spec(ACME_SPEC, recorded=None)) == []  # kubeadm init uploads it


# --- kube-system/kubelet-config: the KubeletConfiguration a joining node writes ------------------


def _kubelet_config_maps(plan: Plan) -> list[Any]:
    return [r for r in plan.by_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-kubelet-config")]


def _planned_kubelet_configuration(plan: Plan) -> dict[str, Any]:
    """The KubeletConfiguration of the first master's kubeadm.yaml (what kubeadm init uploads)."""
    (init,) = [r for r in plan.by_type(INSTANCE) if r.name == "acme-prod-master-0"]
    return cloud_config_kubeadm(yaml.safe_load(plain(init.inputs["userData"], show_secrets=True)))[
        "KubeletConfiguration"
    ]


def test_an_update_that_rebuilds_a_master_writes_the_clusters_kubelet_configuration(master_rebuild: Plan) -> None:
    # Every kubeadm join writes /var/lib/kubelet/config.yaml from kube-system/kubelet-config
    # (cmd/kubeadm/app/phases/kubelet/config.go DownloadConfig, v1.34.2), which kubeadm init uploads
    # once. Masters roll before workers, so the first master step carries a changed one to the
    # workers rebuilt after it.
    (config_map,) = _kubelet_config_maps(master_rebuild)
    assert config_map.inputs["metadata"] == {
        "name": "kubelet-config",
        "namespace": "kube-system",
        "annotations": {"pulumi.com/patchForce": "true"},
    }
    assert config_map.options["retainOnDelete"] is True
    (document,) = yaml.safe_load_all(config_map.inputs["data"]["kubelet"])
    assert document == _planned_kubelet_configuration(plan_spec(ACME_SPEC, recorded=None))
    (instance,) = [r for r in master_rebuild.by_type(INSTANCE) if r.name == "acme-prod-master-0"]
    assert config_map.urn in instance.dependencies
    kept = [r for r in master_rebuild.by_type(INSTANCE) if r.name != "acme-prod-master-0"]
    assert not [r.name for r in kept if config_map.urn in r.dependencies]


def test_the_rollout_rebuilds_every_master_before_any_worker() -> None:
    # What carries a changed kubelet configuration to the workers: a template bump's first master step.
    from kaas.rollout import Tier, rollout
    from kaas.rollout.record import desired_from_spec

    assert RECORDED is not None
    desired = desired_from_spec(ACME_SPEC)
    bumped = dataclasses.replace(
        desired,
        masters=dataclasses.replace(
            desired.masters, revision=dataclasses.replace(desired.masters.revision, template=2)
        ),
        workers=dataclasses.replace(
            desired.workers, revision=dataclasses.replace(desired.workers.revision, template=2)
        ),
    )
    tiers = [m.tier for step in rollout(bumped, RECORDED) for m in step.changes]
    assert tiers[0] is Tier.MASTER and Tier.MASTER not in tiers[tiers.index(Tier.WORKER) :]
