"""Typical create durations (seconds) per resource type: the one table the time-to-ready
simulation (:mod:`kaas.offline.timeline`, ``bench/critical_path.py``) uses.

These are planning ESTIMATES, not measurements: there is no OpenStack cloud on the
build machines, and nothing here was timed against one. Each figure is an order of
magnitude taken from how the service works and what its documentation says, so the
simulation can compare graph shapes (what waits for what); its absolute minutes are
only as good as these guesses. Where each number comes from, in brief:
- Neutron objects (network, subnet, port, router, security groups): single API calls
  that complete in a few seconds; the router interface waits for the L3 agent.
- Nova instances: scheduling, port binding and the image copy take 30-90 s to ACTIVE
  on a typical KVM cloud (60 s here); boot-from-volume first has Cinder create the
  volume from the image (+15 s, :data:`BOOT_VOLUME`).
- Octavia with the amphora provider boots a service VM per load balancer, 1-4 min
  (Octavia docs: the load balancer stays PENDING_CREATE while the amphora boots);
  each listener/pool/monitor/member create is a PENDING_UPDATE cycle of ~5-10 s on
  that amphora. The ovn provider needs no VM (:data:`OVN_LOAD_BALANCER`).
- Designate zones go ACTIVE after the backend (e.g. BIND) syncs (~10 s).
- Helm releases wait for their workloads (`helm install --wait`): image pulls and
  readiness probes, 30 s for a small controller up to several minutes for Harbor or
  OpenSearch (stateful sets with volumes); the ingress controller also waits for the
  Octavia load balancer of its LoadBalancer Service.
- Plain Kubernetes objects are API writes (1 s), except kinds Pulumi awaits until pods
  run: a Job until it completes, a DaemonSet until its rollout is done.
- Work Pulumi does not see: after the first master is ACTIVE, cloud-init installs
  containerd and the kubeadm packages, waits for etcd and runs ``kubeadm init``
  (:data:`KUBEADM_INIT`; kubeadm's own default timeout for the control plane alone is
  4 minutes). The readiness gate (a pulumi-command running ``wait_for_api.py``) only
  polls: its own duration is one poll (:data:`READINESS_POLL`), and the simulation
  makes it wait for that out-of-band work (:func:`out_of_band`).
"""

from __future__ import annotations

from kaas.offline.engine import Plan, ResourceRecord
from kaas.offline.schedule import OutOfBand

BY_TYPE: dict[str, float] = {
    "pulumi:providers:openstack": 0.0,
    "pulumi:providers:kubernetes": 0.0,
    "openstack:networking/network:Network": 2.0,
    "openstack:networking/subnet:Subnet": 3.0,
    "openstack:networking/router:Router": 5.0,
    "openstack:networking/routerInterface:RouterInterface": 4.0,
    "openstack:networking/secGroup:SecGroup": 1.0,
    "openstack:networking/secGroupRule:SecGroupRule": 1.0,
    "openstack:networking/port:Port": 3.0,
    "openstack:networking/floatingIp:FloatingIp": 3.0,
    "openstack:networking/floatingIpAssociate:FloatingIpAssociate": 3.0,
    "openstack:compute/serverGroup:ServerGroup": 1.0,
    "openstack:compute/instance:Instance": 60.0,
    "openstack:blockstorage/volume:Volume": 15.0,
    "openstack:loadbalancer/loadBalancer:LoadBalancer": 180.0,
    "openstack:loadbalancer/listener:Listener": 10.0,
    "openstack:loadbalancer/pool:Pool": 8.0,
    "openstack:loadbalancer/monitor:Monitor": 8.0,
    "openstack:loadbalancer/member:Member": 8.0,
    "openstack:dns/zone:Zone": 10.0,
    "openstack:dns/recordSet:RecordSet": 5.0,
    "openstack:objectstorage/container:Container": 1.0,
    "openstack:identity/role:Role": 1.0,
    "openstack:identity/roleAssignment:RoleAssignment": 1.0,
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3": 1.0,
    "openstack:identity/applicationCredential:ApplicationCredential": 1.0,
    "openstack:identity/user:User": 1.0,
}
BOOT_VOLUME = 15.0  # Cinder volume from the image, before Nova boots from it
OVN_LOAD_BALANCER = 5.0  # Octavia's ovn provider programs OVN flows, no amphora VM

# Out-of-band work on the first master, from ACTIVE to a ready API server: cloud-init
# package installs, containerd, waiting for etcd, `kubeadm init` and its control plane.
KUBEADM_INIT = 240.0
READINESS_POLL = 5.0  # the gate itself: wait_for_api.py's poll once the API answers
READINESS_GATE_SUFFIX = "-wait-for-api"  # kaas.readiness.ApiReadiness's command
COMMAND_DEFAULT = 5.0

# Helm releases, by chart name.
BY_CHART: dict[str, float] = {
    "tigera-operator": 90.0,
    "flannel": 30.0,
    "openstack-cloud-controller-manager": 30.0,
    "openstack-cinder-csi": 45.0,
    "nginx-ingress": 200.0,  # waits for its LoadBalancer Service: OCCM creates an Octavia amphora
    "cert-manager": 60.0,
    "kube-prometheus-stack": 180.0,
    "prometheus": 90.0,
    "metrics-server": 30.0,
    "opensearch": 240.0,
    "opensearch-dashboards": 90.0,
    "fluent-bit": 30.0,
    "harbor": 300.0,
    "velero": 60.0,
    "headlamp": 30.0,
}
HELM_DEFAULT = 60.0
LOCAL_DEFAULT = 0.1  # pulumi-tls, pulumi-random: computed on the operator's machine
KUBERNETES_OBJECT = 1.0  # an API write; Pulumi's await for most kinds is immediate
# Kinds whose Pulumi await waits for pods: a Job until it completes (image pull + a short
# script), a DaemonSet until its rollout is done on every matching node, a Deployment until
# its replicas are ready (image pull + start; the kubelet-csr-approver).
BY_KUBERNETES_KIND: dict[str, float] = {
    "kubernetes:batch/v1:Job": 20.0,
    "kubernetes:apps/v1:DaemonSet": 30.0,
    "kubernetes:apps/v1:Deployment": 20.0,
}

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


INSTANCE = "openstack:compute/instance:Instance"
LOAD_BALANCER = "openstack:loadbalancer/loadBalancer:LoadBalancer"
COMMAND = "command:local:Command"


def is_readiness_gate(record: ResourceRecord) -> bool:
    return record.type == COMMAND and record.name.endswith(READINESS_GATE_SUFFIX)


def duration(record: ResourceRecord) -> float:
    if record.type == HELM_RELEASE:
        return BY_CHART.get(str(record.inputs.get("chart", "")), HELM_DEFAULT)
    if record.type == INSTANCE:
        from_volume = any(d.get("destinationType") == "volume" for d in record.inputs.get("blockDevices") or [])
        return BY_TYPE[INSTANCE] + (BOOT_VOLUME if from_volume else 0.0)
    if record.type == LOAD_BALANCER and record.inputs.get("loadbalancerProvider") == "ovn":
        return OVN_LOAD_BALANCER
    if record.type == COMMAND:
        return READINESS_POLL if is_readiness_gate(record) else COMMAND_DEFAULT
    if record.type in BY_TYPE:
        return BY_TYPE[record.type]
    if record.type.startswith(("tls:", "random:")):
        return LOCAL_DEFAULT
    if record.type.startswith("kubernetes:"):
        return BY_KUBERNETES_KIND.get(record.type, KUBERNETES_OBJECT)
    return 5.0


def first_master(plan: Plan) -> ResourceRecord:
    """The master whose cloud-init runs ``kubeadm init`` (node 0 of the tier; the others join)."""
    masters = [r for r in plan.by_type(INSTANCE) if (r.inputs.get("metadata") or {}).get("kaas-tier") == "master"]
    for record in masters:
        metadata = record.inputs["metadata"]
        if metadata.get("kaas-node") == f"{metadata.get('kaas-cluster')}-master-0":
            return record
    raise KeyError("the plan has no first master (kaas-node <cluster>-master-0)")


def out_of_band(plan: Plan) -> list[OutOfBand]:
    """kubeadm init on the first master: starts when it and the etcd nodes are ACTIVE; the gate waits for it."""
    gates = [r for r in plan.by_type(COMMAND) if is_readiness_gate(r)]
    if not gates:
        return []
    master = first_master(plan)
    etcd = [r.urn for r in plan.by_type(INSTANCE) if (r.inputs.get("metadata") or {}).get("kaas-tier") == "etcd"]
    return [
        OutOfBand(
            key=f"kubeadm init on {master.name} (after it and the etcd nodes are ACTIVE)",
            duration=KUBEADM_INIT,
            after=frozenset([master.urn, *etcd]),
            waiters=frozenset(g.urn for g in gates),
        )
    ]
