"""Typical create durations (seconds) per resource type: the one table the time-to-ready
simulation uses.

These are planning estimates, not measurements on this machine (no cloud here).
Where a number comes from, in brief:
- Neutron objects (network, subnet, port, router, security groups): API calls that
  complete in a few seconds; the router gateway waits for the L3 agent.
- Nova instances: the scheduler, port binding and image copy take 30-90 s to ACTIVE
  on a typical KVM cloud; boot-from-volume adds the Cinder volume create (~15 s).
- Octavia with the amphora provider boots a service VM per load balancer, 1-4 min
  (Octavia docs: "the load balancer will be in PENDING_CREATE while the amphora
  boots"); each listener/pool/monitor/member change is a PENDING_UPDATE cycle of
  ~5-10 s on that amphora. The ovn provider needs no VM (seconds).
- Designate zones go ACTIVE after the backend (e.g. BIND) syncs (~10 s).
- Helm releases wait for their workloads to be ready (`helm install --wait`):
  image pulls and readiness probes, 30 s for a small controller up to several
  minutes for Harbor or OpenSearch (stateful sets with volumes).
- The cluster readiness gate covers cloud-init + `kubeadm init` on the first
  master after it is ACTIVE: package install, image pulls, control plane start
  (kubeadm's own default timeout for the control plane is 4 minutes).
"""

from __future__ import annotations

from kaas.offline.engine import ResourceRecord

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
    "command:local:Command": 240.0,
}

# Helm releases, by chart name.
BY_CHART: dict[str, float] = {
    "tigera-operator": 90.0,
    "flannel": 30.0,
    "openstack-cloud-controller-manager": 30.0,
    "openstack-cinder-csi": 45.0,
    "nginx-ingress": 200.0,  # waits for its LoadBalancer Service: an Octavia amphora
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
KUBERNETES_OBJECT = 1.0

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def duration(record: ResourceRecord) -> float:
    if record.type == HELM_RELEASE:
        return BY_CHART.get(str(record.inputs.get("chart", "")), HELM_DEFAULT)
    if record.type in BY_TYPE:
        return BY_TYPE[record.type]
    if record.type.startswith(("tls:", "random:")):
        return LOCAL_DEFAULT
    if record.type.startswith("kubernetes:"):
        return KUBERNETES_OBJECT
    return 5.0
