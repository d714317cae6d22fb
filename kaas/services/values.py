"""Helm values per managed service: pure functions from the spec (and plain inputs) to dicts.

No secrets pass through here: passwords and credentials live in Kubernetes Secrets
that the values name (``existingSecret`` and friends), so a Release's values never
carry a secret and can be shown in a plan as they are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pulumi
import yaml

from kaas.platform import API_HOST_LABEL, ETCD_LOG_NODE_PORT, FLUENT_BIT_SYSLOG_PORT
from kaas.services import monitoring, names
from kaas.spec.models import CalicoEncapsulation, ClusterSpec, Cni
from kaas.spec.rules import acme_contact

Values = dict[str, Any]

VXLAN_OVERHEAD = 50  # bytes of a VXLAN header (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)
IPIP_OVERHEAD = 20
INGRESS_CLASS = "nginx"
CSI_PROVISIONER = "cinder.csi.openstack.org"

# Annotations on every Ingress the platform serves. cert-manager's ingress-shim turns
# ``cluster-issuer`` into a Certificate; ``http01-edit-in-place`` makes the HTTP-01 solver
# add its challenge path to this Ingress: the nginx.org controller accepts one Ingress
# per host (a second one for the same host is rejected, "host collision"), so a separate
# solver Ingress would never be served.
CERT_ANNOTATIONS: dict[str, str] = {
    "cert-manager.io/cluster-issuer": names.CLUSTER_ISSUER,
    "acme.cert-manager.io/http01-edit-in-place": "true",
}


# Prometheus and Alertmanager have no login of their own: the nginx.org controller asks for
# HTTP Basic credentials (nginx.org/basic-auth-secret, a Secret of type nginx.org/htpasswd
# with key htpasswd, in the Ingress's namespace; nginx/kubernetes-ingress
# docs "Advanced configuration with annotations" and issue #3585).
BASIC_AUTH_ANNOTATIONS: dict[str, str] = {
    "nginx.org/basic-auth-secret": names.WEB_AUTH,
    "nginx.org/basic-auth-realm": "kaas platform",
}


def htpasswd_line(user: str, password: str) -> str:
    """``user:{SSHA}...``: salted SHA-1, one of nginx's auth_basic_user_file formats.

    The salt is derived from the password, so the line is the same on every run (no diff
    on every ``pulumi up``); the password itself is 32 random characters.
    """
    salt = hashlib.sha256(b"kaas-htpasswd:" + password.encode()).digest()[:8]
    digest = hashlib.sha1(password.encode() + salt).digest()
    return f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n"


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


def _ingress(spec: ClusterSpec, label: str, ingress_class: bool = True, basic_auth: bool = False) -> Values:
    name = host(spec, label)
    values: Values = {"enabled": True, "hosts": [name], "tls": [{"secretName": f"{label}-tls", "hosts": [name]}]}
    values["annotations"] = {**CERT_ANNOTATIONS, **(BASIC_AUTH_ANNOTATIONS if basic_auth else {})}
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
    """The ``cloud.conf`` OCCM and Cinder CSI read (INI, application-credential auth; one credential each)."""
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


# Pod-template annotation carrying the SHA-256 of configuration a pod reads only at start (a
# Secret's file or environment): a new value (a credential rotation, a changed cloud.conf)
# changes the pod template, so the workload rolls to it instead of running on the old one.
CONFIG_CHECKSUM_ANNOTATION = "kaas.io/config-sha256"


def checksum(text: str) -> str:
    """SHA-256 (hex) of configuration text, for :data:`CONFIG_CHECKSUM_ANNOTATION`."""
    return hashlib.sha256(text.encode()).hexdigest()


def config_checksum(content: pulumi.Input[Any]) -> pulumi.Output[str]:
    """The :data:`CONFIG_CHECKSUM_ANNOTATION` value of pods that read ``content`` at start: a file's
    text, or an environment (a mapping, hashed as sorted JSON). A SHA-256 of content holding random
    secrets reveals nothing of them, so it is not a Pulumi secret: a preview shows the roll plainly."""
    return pulumi.Output.unsecret(
        pulumi.Output.from_input(content).apply(
            lambda c: checksum(c if isinstance(c, str) else json.dumps(c, sort_keys=True))
        )
    )


def occm_values(spec: ClusterSpec, config_checksum: pulumi.Input[str]) -> Values:
    # The chart reads the cloud-config Secret we create (secret.create false); its own
    # checksum/config annotation hashes the chart's cloudConfig values, not our Secret, so ours
    # goes to podAnnotations (templates/_helpers.tpl occm.controllermanager.annotations).
    return {
        "secret": {"enabled": True, "create": False, "name": names.CLOUD_CONFIG},
        "cluster": {"name": spec.name},
        "podAnnotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum},
    }


def cinder_csi_values(spec: ClusterSpec, config_checksum: pulumi.Input[str]) -> Values:
    # StorageClasses are ours (default Delete, retain Retain): the chart's are off. Both the
    # controller and the node plugin read cloud.conf at start (templates/_helpers.tpl podAnnotations).
    annotations = {"podAnnotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum}}
    return {
        "secret": {"enabled": True, "create": False, "hostMount": False, "name": names.CSI_CLOUD_CONFIG},
        "storageClass": {"enabled": False},
        "clusterID": spec.name,
        "csi": {"plugin": {"controllerPlugin": annotations, "nodePlugin": annotations}},
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
    """ACME (Let's Encrypt) HTTP-01 through the NGINX ingress class for every ingress host.

    The contact is left out when it is on a reserved example domain (only a demo spec can
    get there): Let's Encrypt refuses such an account, but registers one without contact.
    Every Ingress carries ``acme.cert-manager.io/http01-edit-in-place`` (see
    :data:`CERT_ANNOTATIONS`): the solver adds its path to that Ingress instead of creating
    a second Ingress for the same host, which the nginx.org controller rejects.
    """
    acme: Values = {
        "server": "https://acme-v02.api.letsencrypt.org/directory",
        "privateKeySecretRef": {"name": f"{names.CLUSTER_ISSUER}-account"},
        "solvers": [{"http01": {"ingress": {"ingressClassName": INGRESS_CLASS}}}],
    }
    contact = acme_contact(spec)
    if contact is not None:
        acme = {"email": contact, **acme}
    return {"acme": acme}


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
            "ingress": _ingress(spec, names.PROMETHEUS_HOST, basic_auth=True),
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
            "ingress": _ingress(spec, names.ALERTMANAGER_HOST, basic_auth=True),
            "alertmanagerSpec": {
                "storage": _volume_claim(mon.alertmanager_volume_gb, names.STORAGE_CLASS_DEFAULT),
            },
        },
        "grafana": {
            "admin": {"existingSecret": names.GRAFANA_ADMIN, "userKey": "admin-user", "passwordKey": "admin-password"},
            "ingress": _ingress(spec, names.GRAFANA_HOST),
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
        # Tenants write the ServiceMonitors: none may point Prometheus at a file of its container
        # (bearerTokenFile, tlsConfig files), such as its service account token.
        "arbitraryFSAccessThroughSMs": {"deny": True},
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


# OpenSearch security (opensearch-project/security): the image installs demo certificates and
# users unless DISABLE_INSTALL_DEMO_CONFIG is true (opensearch-project/opensearch-build
# docker/release/config/opensearch/opensearch-docker-entrypoint-2.x.sh). The default
# internal_users.yml of the security plugin ships the demo users with published password
# hashes, so ours has none: the users are created by the security setup Job through the
# REST API, authenticated with the admin client certificate (``authcz.admin_dn``).
OPENSEARCH_CERT_DIR = "/usr/share/opensearch/config/certs"
OPENSEARCH_NODE_CN = "opensearch-node"
OPENSEARCH_ADMIN_CN = "opensearch-admin"
OPENSEARCH_FLUENT_BIT_USER = "fluent-bit"
OPENSEARCH_DASHBOARDS_USER = "kibanaserver"  # the security plugin's roles_mapping maps kibana_server to it
OPENSEARCH_LOG_WRITER_ROLE = "log_writer"


def opensearch_security_yaml() -> str:
    ssl = {
        "pemcert_filepath": "certs/tls.crt",
        "pemkey_filepath": "certs/tls.key",
        "pemtrustedcas_filepath": "certs/ca.crt",
    }
    config = {
        "cluster.name": names.OPENSEARCH_CLUSTER,
        "network.host": "0.0.0.0",
        # Transport connections go to the pods' IP addresses, which no certificate names; the
        # peers are still authenticated by the platform CA and nodes_dn.
        "plugins.security.ssl.transport": {**ssl, "enforce_hostname_verification": False},
        "plugins.security.ssl.http": {"enabled": True, **ssl},
        "plugins.security.allow_default_init_securityindex": True,
        "plugins.security.authcz.admin_dn": [f"CN={OPENSEARCH_ADMIN_CN}"],
        "plugins.security.nodes_dn": [f"CN={OPENSEARCH_NODE_CN}"],
        "plugins.security.restapi.roles_enabled": ["all_access", "security_rest_api_access"],
    }
    return yaml.safe_dump(config, sort_keys=False)


def opensearch_values(spec: ClusterSpec) -> Values:
    log = spec.services.logging
    nodes = 3 if spec.is_production else 1
    return {
        "clusterName": names.OPENSEARCH_CLUSTER,
        # The chart's Service is ``masterService`` (default "opensearch-cluster-master", not
        # derived from clusterName); clients and the node certificate use names.OPENSEARCH_SERVICE.
        "masterService": names.OPENSEARCH_SERVICE,
        "singleNode": nodes == 1,
        "replicas": nodes,
        "persistence": {"enabled": True, "storageClass": names.STORAGE_CLASS_DEFAULT, "size": f"{log.volume_gb}Gi"},
        "extraEnvs": [{"name": "DISABLE_INSTALL_DEMO_CONFIG", "value": "true"}],
        "config": {"opensearch.yml": opensearch_security_yaml()},
        "secretMounts": [{"name": "node-tls", "secretName": names.OPENSEARCH_NODE_TLS, "path": OPENSEARCH_CERT_DIR}],
        "securityConfig": {
            "enabled": True,
            "config": {
                "dataComplete": False,
                # No user at all in the file: the demo users (admin, kibanaro, readall, ...) are gone.
                "data": {"internal_users.yml": '_meta:\n  type: "internalusers"\n  config_version: 2\n'},
            },
        },
    }


def opensearch_url() -> str:
    """The Service every client uses; its name is in the node certificate's DNS names."""
    return f"https://{names.OPENSEARCH_SERVICE}:9200"


def opensearch_node_dns_names(spec: ClusterSpec) -> list[str]:
    ns = spec.platform_namespace
    svc, headless = names.OPENSEARCH_SERVICE, f"{names.OPENSEARCH_SERVICE}-headless"
    return [
        svc,
        f"{svc}.{ns}",
        f"{svc}.{ns}.svc",
        f"{svc}.{ns}.svc.cluster.local",
        headless,
        f"*.{headless}",
        f"*.{headless}.{ns}.svc",
        f"*.{headless}.{ns}.svc.cluster.local",
    ]


def opensearch_log_writer_role() -> Values:
    """Least privilege for Fluent Bit: write ``logs-*`` indices (create them, bulk-index), nothing else.

    Action groups from opensearch-project/security static_config/static_action_groups.yml:
    ``create_index`` (indices:admin/create, mapping/put), ``write`` (indices:data/write*),
    ``index``; ``_bulk`` is checked as the cluster action indices:data/write/bulk.
    """
    return {
        "cluster_permissions": ["cluster_monitor", "indices:data/write/bulk"],
        "index_permissions": [
            {
                "index_patterns": [f"{LOG_INDEX_PREFIX}*"],
                "allowed_actions": ["create_index", "indices:admin/mapping/put", "write", "index"],
            }
        ],
    }


def opensearch_dashboards_values(spec: ClusterSpec) -> Values:
    label = spec.services.logging.dashboards_host
    name = host(spec, label)
    ca_dir = "/usr/share/opensearch-dashboards/certs"
    return {
        "opensearchHosts": opensearch_url(),
        "opensearchAccount": {"secret": names.OPENSEARCH_DASHBOARDS},
        # Only the CA certificate of the node certificate's Secret, not the node's key.
        "extraVolumes": [
            {
                "name": "opensearch-ca",
                "secret": {"secretName": names.OPENSEARCH_NODE_TLS, "items": [{"key": "ca.crt", "path": "ca.crt"}]},
            }
        ],
        "extraVolumeMounts": [{"name": "opensearch-ca", "mountPath": ca_dir, "readOnly": True}],
        "config": {
            "opensearch_dashboards.yml": "\n".join(
                [
                    "server.host: '0.0.0.0'",
                    f"opensearch.hosts: [{opensearch_url()}]",
                    "opensearch.ssl.verificationMode: full",
                    f"opensearch.ssl.certificateAuthorities: [{ca_dir}/ca.crt]",
                    "opensearch.username: ${OPENSEARCH_USERNAME}",
                    "opensearch.password: ${OPENSEARCH_PASSWORD}",
                    "opensearch.requestHeadersAllowlist: [authorization, securitytenant]",
                    "",
                ]
            )
        },
        "ingress": {
            "enabled": True,
            "ingressClassName": INGRESS_CLASS,
            "annotations": dict(CERT_ANNOTATIONS),
            "hosts": [{"host": name, "paths": [{"path": "/", "backend": {"serviceName": "", "servicePort": ""}}]}],
            "tls": [{"secretName": f"{label}-tls", "hosts": [name]}],
        },
    }


FLUENT_BIT_CA_DIR = "/fluent-bit/tls"


# The API servers' audit log on every master (kaas.bootstrap.hardening.AUDIT_LOG_PATH), in
# its own index series ``logs-audit-YYYY.MM.DD``: separate from container logs, and still under
# the ``logs-*`` ISM policy (logging.retention_days, 7 by default) and the writer's role.
AUDIT_LOG_PATH = "/var/log/kubernetes/audit/audit.log"
AUDIT_INDEX_PREFIX = f"{LOG_INDEX_PREFIX}audit"


def fluent_bit_output() -> str:
    """The OpenSearch outputs: the least-privilege writer, TLS verified against the platform CA.

    Everything but the audit log (container logs, the nodes' journal, the etcd VMs' syslog) goes
    to ``logs-YYYY.MM.DD``, the API servers' audit log to ``logs-audit-YYYY.MM.DD`` only.
    """
    return _fluent_bit_opensearch(
        r"Match_Regex ^(kube|host|etcd)\..*", LOG_INDEX_PREFIX.rstrip("-")
    ) + _fluent_bit_opensearch("Match audit.*", AUDIT_INDEX_PREFIX)


def _fluent_bit_opensearch(match: str, prefix: str) -> str:
    return "\n".join(
        [
            "[OUTPUT]",
            "    Name opensearch",
            f"    {match}",
            f"    Host {names.OPENSEARCH_SERVICE}",
            "    Port 9200",
            f"    HTTP_User {OPENSEARCH_FLUENT_BIT_USER}",
            "    HTTP_Passwd ${OPENSEARCH_PASSWORD}",
            "    tls On",
            "    tls.verify On",
            f"    tls.ca_file {FLUENT_BIT_CA_DIR}/ca.crt",
            "    Logstash_Format On",
            f"    Logstash_Prefix {prefix}",
            "    Suppress_Type_Name On",
            "    Replace_Dots On",
            "    Retry_Limit False",
            "",
        ]
    )


def fluent_bit_values(spec: ClusterSpec) -> Values:
    """Fluent Bit: container logs to OpenSearch in daily ``logs-`` indices (the ISM policy's pattern)."""
    return {
        "env": [
            {
                "name": "OPENSEARCH_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": names.OPENSEARCH_FLUENT_BIT, "key": "password"}},
            }
        ],
        "extraVolumes": [
            {
                "name": "opensearch-ca",
                "secret": {"secretName": names.OPENSEARCH_NODE_TLS, "items": [{"key": "ca.crt", "path": "ca.crt"}]},
            }
        ],
        "extraVolumeMounts": [{"name": "opensearch-ca", "mountPath": FLUENT_BIT_CA_DIR, "readOnly": True}],
        "config": {"outputs": fluent_bit_output(), "inputs": fluent_bit_inputs()},
        # Every node, masters included: their kubelets' and static pods' logs too.
        "tolerations": [{"operator": "Exists"}],
        # The etcd VMs' rsyslog (kaas.bootstrap.userdata.etcd.rsyslog_forward_config) reaches the syslog input here.
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
    """Container logs (``kube.*``), the nodes' services from the journal (``host.*``), the etcd VMs,
    the API servers' audit log on the masters (``audit.*``, its own index: fluent_bit_output).

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
            "[INPUT]",
            "    Name tail",
            f"    Path {AUDIT_LOG_PATH}",
            "    Parser json",
            "    Tag audit.*",
            "    Mem_Buf_Limit 20MB",
            "    Skip_Long_Lines On",
            "",
        ]
    )


# --- Registry --------------------------------------------------------------------------


# The keys of the ``harbor-internal`` Secret and the chart value that names it
# (goharbor/harbor-helm v1.18.1 values.yaml): Harbor's encryption key (16 chars,
# ``existingSecretSecretKey``, key ``secretKey``), the core/jobservice/registry shared
# secrets (16 chars each) and core's XSRF key (32 chars).
HARBOR_INTERNAL_KEYS: dict[str, int] = {
    "secretKey": 16,
    "secret": 16,
    "CSRF_KEY": 32,
    "JOBSERVICE_SECRET": 16,
    "REGISTRY_HTTP_SECRET": 16,
}
HARBOR_REGISTRY_USER = "harbor-registry"


def harbor_internal_password_name(key: str) -> str:
    """The RandomPassword name part of a ``harbor-internal`` key: ``JOBSERVICE_SECRET`` -> ``harbor-jobservice-secret``."""
    return "harbor-" + re.sub(r"(?<=[a-z])(?=[A-Z])", "-", key).replace("_", "-").lower()


# The nginx.org controller reads ``nginx.org/*`` annotations (and, of the generic ones,
# ``ingress.kubernetes.io/ssl-redirect``); ingress-nginx's ``nginx.ingress.kubernetes.io/*``
# are ignored. Harbor's chart sets ingress-nginx ones by default: null removes a chart
# default in Helm's value merge (the Python SDK sends None as null, as the offline record
# shows; pulumi-kubernetes keeps nulls for Helm since 4.30, pulumi/pulumi-kubernetes#4293,
# and requirements.txt pins 4.34.2). Its own default body limit is 1m (client_max_body_size),
# so image layers need ``client-max-body-size: "0"`` (unlimited, as Harbor's chart intends).
HARBOR_INGRESS_ANNOTATIONS: dict[str, str | None] = {
    "nginx.org/client-max-body-size": "0",
    "nginx.org/proxy-buffering": "False",
    "nginx.org/proxy-read-timeout": "900s",
    "nginx.org/proxy-send-timeout": "900s",
    "ingress.kubernetes.io/ssl-redirect": "true",
    "ingress.kubernetes.io/proxy-body-size": None,
    "nginx.ingress.kubernetes.io/ssl-redirect": None,
    "nginx.ingress.kubernetes.io/proxy-body-size": None,
}


def harbor_values(
    spec: ClusterSpec,
    swift_username: pulumi.Input[str],
    database_password: pulumi.Input[str],
    registry_password: pulumi.Input[str],
    swift_project_id: pulumi.Input[str] | None = None,
) -> Values:
    """Harbor with every secret generated by the program.

    The shared secrets come from the ``harbor-internal`` Secret (``existingSecret*``). Two
    have no such option in chart 1.18.1 and pass as (Pulumi secret) values: the internal
    database's superuser password (``database.internal.password``; the chart renders it
    into its own Secret) and the registry credential (the chart derives the htpasswd line
    from ``registry.credentials.password``). The internal Redis has no password option
    (``harbor.redis.password`` is empty for ``type: internal``): a NetworkPolicy admits only
    Harbor's own pods to it.
    """
    reg = spec.services.registry
    name = host(spec, names.REGISTRY_HOST)
    internal = names.HARBOR_INTERNAL
    return {
        "expose": {
            "type": "ingress",
            "tls": {"enabled": True, "certSource": "secret", "secret": {"secretName": f"{names.REGISTRY_HOST}-tls"}},
            "ingress": {
                "hosts": {"core": name},
                "className": INGRESS_CLASS,
                "annotations": {**CERT_ANNOTATIONS, **HARBOR_INGRESS_ANNOTATIONS},
            },
        },
        "externalURL": f"https://{name}",
        "existingSecretAdminPassword": names.HARBOR_ADMIN,
        "existingSecretAdminPasswordKey": "HARBOR_ADMIN_PASSWORD",
        "existingSecretSecretKey": internal,
        "core": {"existingSecret": internal, "existingXsrfSecret": internal, "existingXsrfSecretKey": "CSRF_KEY"},
        "jobservice": {"existingSecret": internal, "existingSecretKey": "JOBSERVICE_SECRET"},
        "registry": {
            "existingSecret": internal,
            "existingSecretKey": "REGISTRY_HTTP_SECRET",
            "credentials": {"username": HARBOR_REGISTRY_USER, "password": pulumi.Output.secret(registry_password)},
        },
        "database": {"type": "internal", "internal": {"password": pulumi.Output.secret(database_password)}},
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


def velero_values(spec: ClusterSpec, credentials_checksum: pulumi.Input[str]) -> Values:
    """Velero: daily schedule to the cluster-backups container, Cinder snapshots.

    Velero writes resources to object storage as they are (no client-side encryption in
    Velero 1.17 or the OpenStack plugin; Swift encrypts at rest only where the cloud
    enables it). So by default the schedule excludes Secrets: they are restored from
    the encrypted etcd snapshots, and a Velero backup leaks none. ``include_secrets``
    brings them back for customers who accept that.
    """
    backups = spec.services.backups
    template: Values = {
        "ttl": f"{backups.retention_days * 24}h0m0s",
        "storageLocation": "swift",
        "volumeSnapshotLocations": ["cinder"],
        "snapshotVolumes": True,
    }
    if not backups.include_secrets:
        template["excludedResources"] = ["secrets"]
    return {
        # The metrics Service; monitoring.velero_service_monitor scrapes it when monitoring is on.
        "metrics": {"enabled": True},
        "initContainers": [
            {
                "name": "velero-plugin-openstack",
                "image": backups.plugin_image or names.velero_plugin_image(),
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            }
        ],
        "credentials": {"useSecret": False, "extraSecretRef": names.VELERO_CREDENTIALS},
        # The server and the node agents take the credentials as environment (envFrom) at start.
        "podAnnotations": {CONFIG_CHECKSUM_ANNOTATION: credentials_checksum},
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
                "template": template,
            }
        },
    }


# --- Dashboard -------------------------------------------------------------------------


def headlamp_values(spec: ClusterSpec) -> Values:
    """Headlamp without the chart's cluster-admin binding (kubernetes-sigs/headlamp
    charts/headlamp values.yaml: ``clusterRoleBinding.create: true`` to ``cluster-admin``).

    Users sign in with their own token (a Keystone token through k8s-keystone-auth), so
    the API server authorises each request as the user. The pod keeps its service
    account token (Headlamp's in-cluster mode reads the API address and CA through it),
    but that account is bound to nothing, so the dashboard grants nothing by itself.
    """
    name = host(spec, names.DASHBOARD_HOST)
    return {
        "clusterRoleBinding": {"create": False},
        "ingress": {
            "enabled": True,
            "ingressClassName": INGRESS_CLASS,
            "annotations": dict(CERT_ANNOTATIONS),
            "hosts": [{"host": name, "paths": [{"path": "/", "type": "Prefix"}]}],
            "tls": [{"secretName": f"{names.DASHBOARD_HOST}-tls", "hosts": [name]}],
        },
    }
