"""Helm values per managed service: pure functions from the spec (and plain inputs) to dicts.

No secrets pass through here: passwords and credentials live in Kubernetes Secrets
that the values name (``existingSecret`` and friends), so a Release's values never
carry a secret and can be shown in a plan as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi

from kaas.platform import API_HOST_LABEL, ETCD_LOG_NODE_PORT, FLUENT_BIT_SYSLOG_PORT
from kaas.services import monitoring, names
from kaas.spec.models import CalicoEncapsulation, ClusterSpec, Cni

Values = dict[str, Any]

VXLAN_OVERHEAD = 50  # bytes of a VXLAN header (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)
IPIP_OVERHEAD = 20
INGRESS_CLASS = "nginx"
CSI_PROVISIONER = "cinder.csi.openstack.org"


def host(spec: ClusterSpec, label: str) -> str:
    """``<label>.<cluster>.<domain>``: every host the ingress serves."""
    if label == API_HOST_LABEL:
        raise ValueError(f"{label!r} is the API server's host, not an ingress host")
    return f"{label}.{spec.cluster_domain}"


def pod_mtu(spec: ClusterSpec) -> int:
    """The pod interface MTU: Neutron's MTU minus the encapsulation the CNI adds."""
    net = spec.networking
    if net.cni is Cni.CALICO and net.calico_encapsulation is CalicoEncapsulation.NONE:
        return net.mtu
    if net.cni is Cni.CALICO and net.calico_encapsulation is CalicoEncapsulation.IPIP:
        return net.mtu - IPIP_OVERHEAD
    return net.mtu - VXLAN_OVERHEAD  # flannel, canal (flannel data plane) and calico VXLAN


def _ingress(spec: ClusterSpec, label: str, ingress_class: bool = True) -> Values:
    name = host(spec, label)
    values: Values = {"enabled": True, "hosts": [name], "tls": [{"secretName": f"{label}-tls", "hosts": [name]}]}
    values["annotations"] = {"cert-manager.io/cluster-issuer": names.CLUSTER_ISSUER}
    if ingress_class:
        values["ingressClassName"] = INGRESS_CLASS
    return values


# --- CNI -------------------------------------------------------------------------------


def calico_values(spec: ClusterSpec) -> Values:
    """tigera-operator: the operator plus its ``Installation`` (CRDs come with the chart)."""
    encapsulation = {
        CalicoEncapsulation.VXLAN: "VXLAN",
        CalicoEncapsulation.IPIP: "IPIP",
        CalicoEncapsulation.NONE: "None",
    }[spec.networking.calico_encapsulation]
    return {
        "installation": {
            "enabled": True,
            "cni": {"type": "Calico"},
            "calicoNetwork": {
                "mtu": pod_mtu(spec),
                "bgp": "Enabled" if encapsulation in ("IPIP", "None") else "Disabled",
                "ipPools": [
                    {
                        "cidr": spec.networking.pod_cidr,
                        "encapsulation": encapsulation,
                        "natOutgoing": "Enabled",
                        "nodeSelector": "all()",
                    }
                ],
            },
        },
        "apiServer": {"enabled": False},
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
    }


def canal_values(spec: ClusterSpec) -> Values:
    """Canal, the way the operator offers it: Calico policy over a VXLAN overlay without BGP.

    The tigera-operator cannot run flannel; Calico's VXLAN mode with BGP off is the
    data plane Canal used (flannel's VXLAN) with Calico's policy engine on top.
    """
    values = calico_values(spec)
    network = values["installation"]["calicoNetwork"]
    network["bgp"] = "Disabled"
    network["ipPools"][0]["encapsulation"] = "VXLAN"
    network["mtu"] = spec.networking.mtu - VXLAN_OVERHEAD
    return values


def flannel_values(spec: ClusterSpec) -> Values:
    return {
        "podCidr": spec.networking.pod_cidr,
        "flannel": {"backend": "vxlan", "mtu": pod_mtu(spec)},
    }


# --- OpenStack integration -------------------------------------------------------------


# cloud-provider-openstack reads cloud.conf with gcfg (git-config syntax): ';' and '#'
# start a comment, '"' and '\\' quote and escape, a newline starts a new key. A value
# is written bare only when it is none of those; anything else is refused.
_INI_VALUE = re.compile(r"[A-Za-z0-9._~%/:@+=-]*")


def ini_line(key: str, value: str) -> str:
    """``key=value`` for cloud.conf, or ValueError when the value would be INI syntax."""
    if not _INI_VALUE.fullmatch(value):
        raise ValueError(f"cloud.conf {key}: {value!r} holds characters an INI value cannot carry bare")
    return f"{key}={value}"


def cloud_config(spec: ClusterSpec, app_credential_id: str, app_credential_secret: str) -> str:
    """The ``cloud.conf`` both OCCM and Cinder CSI read (INI, application-credential auth)."""
    lines = [
        "[Global]",
        ini_line("auth-url", spec.openstack.auth_url),
        ini_line("application-credential-id", app_credential_id),
        ini_line("application-credential-secret", app_credential_secret),
        ini_line("region", spec.openstack.region),
    ]
    return "\n".join(lines) + "\n"


def cloud_config_sections(spec: ClusterSpec, external_network_id: str, subnet_id: str) -> str:
    """The non-secret sections of ``cloud.conf``: Octavia load balancers and Cinder."""
    lines = [
        "",
        "[LoadBalancer]",
        f"floating-network-id={external_network_id}",
        f"subnet-id={subnet_id}",
        f"lb-provider={spec.openstack.octavia_provider.value}",
        "create-monitor=true",
        f"monitor-delay={spec.load_balancer.monitor_delay_s}s",
        f"monitor-timeout={spec.load_balancer.monitor_timeout_s}s",
        f"monitor-max-retries={spec.load_balancer.monitor_max_retries}",
        "",
        "[BlockStorage]",
        "ignore-volume-az=true",
    ]
    return "\n".join(lines) + "\n"


def occm_values(spec: ClusterSpec) -> Values:
    # The chart reads the cloud-config Secret we create (secret.create false).
    return {"secret": {"enabled": True, "create": False, "name": names.CLOUD_CONFIG}, "cluster": {"name": spec.name}}


def cinder_csi_values(spec: ClusterSpec) -> Values:
    # StorageClasses are ours (default Delete, retain Retain): the chart's are off.
    return {
        "secret": {"enabled": True, "create": False, "hostMount": False, "name": names.CLOUD_CONFIG},
        "storageClass": {"enabled": False},
        "clusterID": spec.name,
    }


# --- Ingress ---------------------------------------------------------------------------


def ingress_values(spec: ClusterSpec, ingress_ip: pulumi.Input[str]) -> Values:
    """NGINX Ingress Controller: HA replicas, PDB, anti-affinity, LB Service on the ingress FIP."""
    selector = {"app.kubernetes.io/name": "nginx-ingress", "app.kubernetes.io/instance": names.INGRESS_RELEASE}
    return {
        "controller": {
            "kind": "deployment",
            "replicaCount": spec.services.ingress.replicas,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            },
            "ingressClass": {"name": INGRESS_CLASS, "create": True, "setAsDefaultIngress": True},
            "service": {
                "type": "LoadBalancer",
                "loadBalancerIP": ingress_ip,
                # OCCM: keep the pre-allocated floating IP when the Service goes away.
                "annotations": {"loadbalancer.openstack.org/keep-floatingip": "true"},
            },
        }
    }


def cert_manager_values(spec: ClusterSpec) -> Values:
    return {"crds": {"enabled": True}, "replicaCount": 2 if spec.is_production else 1}


def cluster_issuer_spec(spec: ClusterSpec) -> Values:
    """ACME (Let's Encrypt) HTTP-01 through the NGINX ingress class for every ingress host."""
    email = spec.services.ingress.acme_email or spec.dns.email
    return {
        "acme": {
            "email": email,
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "privateKeySecretRef": {"name": f"{names.CLUSTER_ISSUER}-account"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": INGRESS_CLASS}}}],
        }
    }


# --- Monitoring ------------------------------------------------------------------------


def retention(days: int) -> str:
    return f"{days}d"


def _volume_claim(size_gb: int, storage_class: str) -> Values:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gb}Gi"}},
            }
        }
    }


def monitoring_values(spec: ClusterSpec) -> Values:
    """kube-prometheus-stack: the platform Prometheus (platform namespaces only), Grafana, Alertmanager."""
    mon = spec.services.monitoring
    platform_namespaces = {"matchLabels": {names.platform_label(spec): "true"}}
    base: Values = {
        "prometheus": {
            "ingress": _ingress(spec, "prometheus"),
            "prometheusSpec": {
                "retention": retention(mon.prometheus_retention_days),
                "storageSpec": _volume_claim(mon.prometheus_volume_gb, names.STORAGE_CLASS_DEFAULT),
                "serviceMonitorNamespaceSelector": platform_namespaces,
                "podMonitorNamespaceSelector": platform_namespaces,
                "ruleNamespaceSelector": platform_namespaces,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
            },
        },
        "alertmanager": {
            "ingress": _ingress(spec, "alertmanager"),
            "alertmanagerSpec": {
                "storage": _volume_claim(mon.alertmanager_volume_gb, names.STORAGE_CLASS_DEFAULT),
            },
        },
        "grafana": {
            "admin": {"existingSecret": names.GRAFANA_ADMIN, "userKey": "admin-user", "passwordKey": "admin-password"},
            "ingress": _ingress(spec, "grafana"),
            "persistence": {
                "enabled": True,
                "storageClassName": names.STORAGE_CLASS_DEFAULT,
                "size": f"{mon.grafana_volume_gb}Gi",
            },
        },
    }
    # Scrape targets outside the pod network, HA, alert routing and the platform's own rules.
    for extra in (
        monitoring.scrape_values(spec),
        monitoring.ha_values(spec),
        monitoring.alertmanager_values(spec),
        monitoring.rules_values(spec),
    ):
        base = monitoring.deep_merge(base, extra)
    return base


def app_prometheus_spec(spec: ClusterSpec) -> Values:
    """The customer-apps ``Prometheus``: customer namespaces only, its own retention and volume."""
    mon = spec.services.monitoring
    customer = {"matchExpressions": [{"key": names.platform_label(spec), "operator": "DoesNotExist"}]}
    selector = {"matchLabels": {names.app_monitoring_label(spec): "true"}}
    return {
        # As the platform Prometheus: one replica per worker, at most 2, never two on one node
        # (objects.app_prometheus_pdb keeps one running through a drain).
        "replicas": monitoring.replicas(spec),
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"prometheus": names.APP_PROMETHEUS}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "retention": retention(mon.app_prometheus_retention_days),
        "serviceAccountName": names.APP_PROMETHEUS,
        "serviceMonitorSelector": selector,
        "podMonitorSelector": selector,
        "ruleSelector": selector,
        "serviceMonitorNamespaceSelector": customer,
        "podMonitorNamespaceSelector": customer,
        "ruleNamespaceSelector": customer,
        "storage": _volume_claim(mon.prometheus_volume_gb, names.STORAGE_CLASS_DEFAULT),
    }


def metrics_server_values(spec: ClusterSpec) -> Values:
    return {"replicas": 2 if spec.is_production else 1, "podDisruptionBudget": {"enabled": spec.is_production}}


# --- Logging ---------------------------------------------------------------------------

LOG_INDEX_PREFIX = "logs-"


def ism_policy(spec: ClusterSpec) -> Values:
    """The OpenSearch ISM policy: log indices are deleted when older than the retention."""
    days = spec.services.logging.retention_days
    return {
        "policy": {
            "description": f"Delete log indices after {days} days",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{days}d"}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [f"{LOG_INDEX_PREFIX}*"], "priority": 100}],
        }
    }


def ism_policy_json(spec: ClusterSpec) -> str:
    return json.dumps(ism_policy(spec), indent=2, sort_keys=True)


def opensearch_values(spec: ClusterSpec) -> Values:
    log = spec.services.logging
    nodes = 3 if spec.is_production else 1
    return {
        "clusterName": names.OPENSEARCH_CLUSTER,
        # The chart's Service is ``masterService`` (default "opensearch-cluster-master"), not
        # derived from clusterName; Fluent Bit, Dashboards and the ISM Job reach it as opensearch_url().
        "masterService": f"{names.OPENSEARCH_CLUSTER}-master",
        "singleNode": nodes == 1,
        "replicas": nodes,
        "persistence": {"enabled": True, "storageClass": names.STORAGE_CLASS_DEFAULT, "size": f"{log.volume_gb}Gi"},
        "extraEnvs": [
            {
                "name": "OPENSEARCH_INITIAL_ADMIN_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": names.OPENSEARCH_ADMIN, "key": "password"}},
            }
        ],
    }


def opensearch_url() -> str:
    return f"https://{names.OPENSEARCH_CLUSTER}-master:9200"


def opensearch_dashboards_values(spec: ClusterSpec) -> Values:
    label = spec.services.logging.dashboards_host
    name = host(spec, label)
    return {
        "opensearchHosts": opensearch_url(),
        "ingress": {
            "enabled": True,
            "ingressClassName": INGRESS_CLASS,
            "annotations": {"cert-manager.io/cluster-issuer": names.CLUSTER_ISSUER},
            "hosts": [{"host": name, "paths": [{"path": "/", "backend": {"serviceName": "", "servicePort": ""}}]}],
            "tls": [{"secretName": f"{label}-tls", "hosts": [name]}],
        },
    }


def fluent_bit_values(spec: ClusterSpec) -> Values:
    """Fluent Bit: container logs to OpenSearch in daily ``logs-`` indices (the ISM policy's pattern)."""
    outputs = "\n".join(
        [
            "[OUTPUT]",
            "    Name opensearch",
            "    Match *",
            f"    Host {names.OPENSEARCH_CLUSTER}-master",
            "    Port 9200",
            "    HTTP_User admin",
            "    HTTP_Passwd ${OPENSEARCH_PASSWORD}",
            "    tls On",
            "    tls.verify Off",
            "    Logstash_Format On",
            f"    Logstash_Prefix {LOG_INDEX_PREFIX.rstrip('-')}",
            "    Suppress_Type_Name On",
            "    Replace_Dots On",
            "    Retry_Limit False",
            "",
        ]
    )
    return {
        "env": [
            {
                "name": "OPENSEARCH_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": names.OPENSEARCH_ADMIN, "key": "password"}},
            }
        ],
        "config": {"outputs": outputs, "inputs": fluent_bit_inputs()},
        # Every node, masters included: their kubelets' and static pods' logs too.
        "tolerations": [{"operator": "Exists"}],
        # The etcd VMs' rsyslog (cloudinit.rsyslog_forward_config) reaches the syslog input here.
        "service": {"type": "NodePort"},
        "extraPorts": [
            {
                "name": "syslog",
                "port": FLUENT_BIT_SYSLOG_PORT,
                "containerPort": FLUENT_BIT_SYSLOG_PORT,
                "protocol": "TCP",
                "nodePort": ETCD_LOG_NODE_PORT,
            }
        ],
    }


def fluent_bit_inputs() -> str:
    """Container logs (``kube.*``), the nodes' services from the journal (``host.*``), the etcd VMs.

    The chart's default inputs (fluent-bit 0.58.1 values.yaml ``config.inputs``) read the
    journal for kubelet.service only; containerd's log is the node's other half. The
    journal lives under /var/log/journal, which the chart's DaemonSet mounts with /var/log.
    """
    return "\n".join(
        [
            "[INPUT]",
            "    Name tail",
            "    Path /var/log/containers/*.log",
            "    multiline.parser docker, cri",
            "    Tag kube.*",
            "    Mem_Buf_Limit 5MB",
            "    Skip_Long_Lines On",
            "",
            "[INPUT]",
            "    Name systemd",
            "    Tag host.*",
            "    Systemd_Filter _SYSTEMD_UNIT=kubelet.service",
            "    Systemd_Filter _SYSTEMD_UNIT=containerd.service",
            "    Read_From_Tail On",
            "",
            # The etcd VMs (not Kubernetes nodes): RFC 5424 over TCP from their rsyslog.
            "[INPUT]",
            "    Name syslog",
            "    Mode tcp",
            "    Listen 0.0.0.0",
            f"    Port {FLUENT_BIT_SYSLOG_PORT}",
            "    Parser syslog-rfc5424",
            "    Tag etcd.syslog",
            "",
        ]
    )


# --- Registry --------------------------------------------------------------------------


def harbor_values(
    spec: ClusterSpec, swift_username: pulumi.Input[str], swift_project_id: pulumi.Input[str] | None = None
) -> Values:
    reg = spec.services.registry
    name = host(spec, names.REGISTRY_HOST)
    return {
        "expose": {
            "type": "ingress",
            "tls": {"enabled": True, "certSource": "secret", "secret": {"secretName": f"{names.REGISTRY_HOST}-tls"}},
            "ingress": {
                "hosts": {"core": name},
                "className": INGRESS_CLASS,
                "annotations": {"cert-manager.io/cluster-issuer": names.CLUSTER_ISSUER},
            },
        },
        "externalURL": f"https://{name}",
        "existingSecretAdminPassword": names.HARBOR_ADMIN,
        "existingSecretAdminPasswordKey": "HARBOR_ADMIN_PASSWORD",
        "persistence": {
            "enabled": True,
            "resourcePolicy": "keep",
            "persistentVolumeClaim": {
                "database": {"storageClass": names.STORAGE_CLASS_RETAIN, "size": f"{reg.database_gb}Gi"},
                "redis": {"storageClass": names.STORAGE_CLASS_DEFAULT, "size": "1Gi"},
                "jobservice": {"jobLog": {"storageClass": names.STORAGE_CLASS_DEFAULT, "size": "1Gi"}},
                "trivy": {"storageClass": names.STORAGE_CLASS_DEFAULT, "size": "5Gi"},
            },
            "imageChartStorage": {
                "type": "swift",
                "swift": {
                    "authurl": spec.openstack.auth_url,
                    "username": swift_username,
                    "container": spec.container_name("registry"),
                    "region": spec.openstack.region,
                    "authversion": 3,
                    # Keystone v3 scopes the token: the user's domain and the project that owns
                    # the container (distribution's swift driver: domain, tenantid).
                    "domain": spec.identity.domain,
                    **({"tenantid": swift_project_id} if swift_project_id is not None else {}),
                    "existingSecret": names.HARBOR_SWIFT,
                },
            },
        },
        "trivy": {"enabled": reg.scanning},
        # Plain HTTP inside the cluster: harbor_core_url() relies on it.
        "internalTLS": {"enabled": False},
    }


def harbor_core_url(spec: ClusterSpec) -> str:
    """Harbor core's Service inside the cluster, where its API answers.

    goharbor/harbor-helm v1.18.1: ``templates/core/core-svc.yaml`` names it
    ``harbor.core`` = ``<fullname>-core``, and ``harbor.fullname`` is the release name
    when that contains "harbor"; ``harbor.core.servicePort`` is 80 (http) while
    ``internalTLS.enabled`` is false, as ``harbor_values`` sets it.
    """
    return f"http://{names.HARBOR_RELEASE}-core.{spec.platform_namespace}.svc"


# --- Backups ---------------------------------------------------------------------------


def velero_values(spec: ClusterSpec) -> Values:
    backups = spec.services.backups
    return {
        # The metrics Service; monitoring.velero_service_monitor scrapes it when monitoring is on.
        "metrics": {"enabled": True},
        "initContainers": [
            {
                "name": "velero-plugin-openstack",
                "image": names.velero_plugin_image(),
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            }
        ],
        "credentials": {"useSecret": False, "extraSecretRef": names.VELERO_CREDENTIALS},
        "configuration": {
            "backupStorageLocation": [
                {
                    "name": "swift",
                    "default": True,
                    "provider": "community.openstack.org/openstack",
                    "bucket": spec.container_name("cluster_backups"),
                    "config": {"region": spec.openstack.region},
                }
            ],
            "volumeSnapshotLocation": [
                {
                    "name": "cinder",
                    "provider": "community.openstack.org/openstack-cinder",
                    "config": {"method": "snapshot", "region": spec.openstack.region},
                }
            ],
        },
        "backupsEnabled": True,
        "snapshotsEnabled": True,
        "schedules": {
            "daily": {
                "disabled": False,
                "schedule": backups.schedule,
                "useOwnerReferencesInBackup": False,
                "template": {
                    "ttl": f"{backups.retention_days * 24}h0m0s",
                    "storageLocation": "swift",
                    "volumeSnapshotLocations": ["cinder"],
                    "snapshotVolumes": True,
                },
            }
        },
    }


# --- Dashboard -------------------------------------------------------------------------


def headlamp_values(spec: ClusterSpec) -> Values:
    name = host(spec, names.DASHBOARD_HOST)
    return {
        "ingress": {
            "enabled": True,
            "ingressClassName": INGRESS_CLASS,
            "annotations": {"cert-manager.io/cluster-issuer": names.CLUSTER_ISSUER},
            "hosts": [{"host": name, "paths": [{"path": "/", "type": "Prefix"}]}],
            "tls": [{"secretName": f"{names.DASHBOARD_HOST}-tls", "hosts": [name]}],
        }
    }
