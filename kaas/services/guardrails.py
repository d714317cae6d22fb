"""Guardrails for every customer namespace, including those created after ``pulumi up``.

One definition, two consumers:

- :func:`namespace_guardrails` (quota, LimitRange, default-deny when the spec asks) and
  :func:`pull_secret` are what the program creates in each spec'd customer namespace
  (``services.default_namespace`` and ``services.customer_namespaces``);
- the *guardrail reconciler* gives the same objects to every other namespace: a CronJob
  in the platform namespace runs :data:`RECONCILE_SCRIPT` (bash and the real kubectl)
  every minute over the manifests the program renders into its ConfigMap
  (:func:`reconciler_config`). No policy engine chart is packaged, and a list of
  namespaces in the spec goes stale the moment a customer runs ``kubectl create ns``.

Which namespaces: every ``Active`` namespace except Kubernetes', the CNI's and the
platform's own (``ClusterSpec.reserved_namespaces``), those labelled
``<provider>/platform=true``, and those that opt out with ``<provider>/guardrails=off``
(:func:`opt_out_label`). A guardrail object that exists (by name) is left alone, so a
customer's tuned quota survives; one that is deleted comes back within a minute. The one
exception is the pull Secret: one whose ``.dockerconfigjson`` differs from the source's is
replaced (``kubectl replace``), so a rotated pull robot (a new credential generation,
:mod:`kaas.services.harbor_robot`) reaches every namespace within a minute.

Least privilege (:func:`reconciler_rbac`): list/watch/get namespaces; ``create`` (only)
ResourceQuotas, LimitRanges, NetworkPolicies and Secrets; ``get`` on exactly one Secret,
the pull credentials' source in the platform namespace (``resourceNames``); ``get`` and
``update`` on Secrets named as the pull Secret (``resourceNames``, in any namespace). It can
read or change no other Secret, patch or delete nothing, and change no other guardrail.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from kaas.services import images, names, objects
from kaas.spec.models import ClusterSpec

Manifest = dict[str, Any]

RECONCILER = "namespace-guardrails"
CONFIG_DIR = "/etc/namespace-guardrails"
SCHEDULE = "* * * * *"
# No successful run for this long (15 runs of SCHEDULE) raises KaasCronJobNotSucceeding
# (kaas.services.alerts.platform_jobs_rule).
STALE_AFTER_SECONDS = 15 * 60
# A tag in the inventory with bash (Bitnami images are built on minideb) and kubectl at the
# cluster's minor version; Bitnami's frozen catalogue, like the Velero chart's CRD Job: mirror it.
IMAGE = "docker.io/bitnamilegacy/kubectl:1.34"
PULL_SECRET_KEY = ".dockerconfigjson"
PULL_PLACEHOLDER = "__DOCKERCONFIGJSON_BASE64__"

# The kinds the reconciler creates (core or networking.k8s.io), by resource.
GUARDRAIL_RESOURCES: dict[str, str] = {
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "NetworkPolicy": "networkpolicies",
    "Secret": "secrets",
}


def opt_out_label(spec: ClusterSpec) -> str:
    """``<provider>/guardrails``: a namespace labelled ``off`` gets no guardrail from the reconciler."""
    return f"{spec.provider_name}/guardrails"


OPT_OUT_VALUE = "off"


def namespace_selector(spec: ClusterSpec) -> str:
    """The label selector of the namespaces the reconciler looks at (the reserved names are filtered after)."""
    return f"{names.platform_label(spec)}!=true,{opt_out_label(spec)}!={OPT_OUT_VALUE}"


def namespace_guardrails(spec: ClusterSpec) -> list[Manifest]:
    """The guardrails of one customer namespace, without ``metadata.namespace`` (set by the consumer)."""
    found = [objects.resource_quota(spec, ""), objects.limit_range(spec, "")]
    if spec.services.default_deny_network_policy:
        found.append(objects.default_deny(spec, ""))
    for manifest in found:
        del manifest["metadata"]["namespace"]
    return found


def in_namespace(manifest: Manifest, namespace: str) -> Manifest:
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}


def pull_secret(spec: ClusterSpec, namespace: str, config: pulumi.Input[str]) -> Manifest:
    """The registry pull Secret of one customer namespace (the docker config JSON)."""
    return objects.secret(
        spec, names.HARBOR_PULL, namespace, {PULL_SECRET_KEY: config}, secret_type="kubernetes.io/dockerconfigjson"
    )


def pull_source(spec: ClusterSpec, config: pulumi.Input[str]) -> Manifest:
    """The one Secret the reconciler may read: the pull credentials, in the platform namespace."""
    return objects.secret(
        spec, names.GUARDRAIL_PULL_SOURCE, spec.platform_namespace, {PULL_SECRET_KEY: config},
        secret_type="kubernetes.io/dockerconfigjson",
    )  # fmt: skip


def pull_secret_template(spec: ClusterSpec) -> str:
    """The pull Secret as the reconciler creates it: ``data`` holds a placeholder for the source's value."""
    manifest = pull_secret(spec, "", "")
    del manifest["metadata"]["namespace"], manifest["stringData"]
    manifest["data"] = {PULL_SECRET_KEY: PULL_PLACEHOLDER}
    return json.dumps(manifest, sort_keys=True)


RECONCILE_SCRIPT = r"""#!/bin/bash
# Gives every customer namespace the guardrail objects it lacks (kaas.services.guardrails).
# Reads its settings and manifests from GUARDRAILS_CONFIG; creates only, never deletes, and
# changes one object only: a pull Secret whose .dockerconfigjson is not the source's (a rotation).
set -euo pipefail
config=${GUARDRAILS_CONFIG:-/etc/namespace-guardrails}
selector=$(<"$config/namespace-selector")
reserved=" $(<"$config/reserved-namespaces") "
created=0
replaced=0
failed=0

create() {  # create the manifest on stdin in namespace $1; one that exists (by name) is left alone
    local out
    if out=$(kubectl create --namespace "$1" --filename - --output name 2>&1); then
        echo "$1: created $out"
        created=$((created + 1))
    elif [[ $out == *AlreadyExists* ]]; then
        :
    else
        echo "$1: $out" >&2
        failed=1
    fi
}

refresh_pull() {  # the pull Secret of namespace $1 (manifest on stdin) as the source's: created, or replaced if stale
    local manifest out current
    manifest=$(cat)
    if out=$(kubectl create --namespace "$1" --filename - --output name 2>&1 <<<"$manifest"); then
        echo "$1: created $out"
        created=$((created + 1))
        return
    elif [[ $out != *AlreadyExists* ]]; then
        echo "$1: $out" >&2
        failed=1
        return
    fi
    if ! current=$(kubectl get secret --namespace "$1" "$pull_name" \
        --output 'jsonpath={.data.\.dockerconfigjson}' 2>&1); then
        echo "$1: $current" >&2
        failed=1
    elif [[ $current != "$pull" ]]; then
        if out=$(kubectl replace --namespace "$1" --filename - --output name 2>&1 <<<"$manifest"); then
            echo "$1: replaced $out"
            replaced=$((replaced + 1))
        else
            echo "$1: $out" >&2
            failed=1
        fi
    fi
}

pull=""
if [[ -f $config/pull-secret.json ]]; then
    pull_name=$(<"$config/pull-secret-name")
    source_namespace=$(<"$config/pull-source-namespace")
    source_name=$(<"$config/pull-source-name")
    if ! pull=$(kubectl get secret --namespace "$source_namespace" "$source_name" \
        --output 'jsonpath={.data.\.dockerconfigjson}') || [[ -z $pull ]]; then
        # The other guardrails still go out; the job fails so the pull Secret is not forgotten.
        echo "secret $source_namespace/$source_name: no .dockerconfigjson to copy" >&2
        pull=""
        failed=1
    fi
    template=$(<"$config/pull-secret.json")
fi

namespaces=$(kubectl get namespaces --selector "$selector" --field-selector status.phase=Active \
    --output 'jsonpath={.items[*].metadata.name}')
for namespace in $namespaces; do
    if [[ $reserved == *" $namespace "* ]]; then
        continue
    fi
    for manifest in "$config"/guardrail-*.json; do
        create "$namespace" <"$manifest"
    done
    if [[ -n $pull ]]; then
        refresh_pull "$namespace" <<<"${template/__DOCKERCONFIGJSON_BASE64__/$pull}"
    fi
done
echo "namespace-guardrails: $created object(s) created, $replaced replaced"
exit "$failed"
"""


def reconciler_config(spec: ClusterSpec, with_pull_secret: bool) -> Manifest:
    """The ConfigMap the reconciler runs from: its script, settings and the guardrail manifests."""
    data = {
        "reconcile.sh": RECONCILE_SCRIPT,
        "namespace-selector": namespace_selector(spec),
        "reserved-namespaces": " ".join(spec.reserved_namespaces),
    }
    for manifest in namespace_guardrails(spec):
        # The spec first: a change (the quota follows the workers) reads in `kaas diff` at a glance.
        ordered = {"spec": manifest["spec"], **{k: v for k, v in manifest.items() if k != "spec"}}
        data[f"guardrail-{manifest['kind'].lower()}.json"] = json.dumps(ordered)
    if with_pull_secret:
        data["pull-secret.json"] = pull_secret_template(spec)
        data["pull-source-namespace"] = spec.platform_namespace
        data["pull-source-name"] = names.GUARDRAIL_PULL_SOURCE
        data["pull-secret-name"] = names.HARBOR_PULL
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": objects._meta(spec, RECONCILER, spec.platform_namespace),
        "data": data,
    }


def reconciler_rbac(spec: ClusterSpec, with_pull_secret: bool) -> list[Manifest]:
    """ServiceAccount, ClusterRole and binding (namespaces; create the guardrail kinds; get and update
    the Secrets named as the pull Secret), and the Role and binding that let it read the one source Secret."""
    ns = spec.platform_namespace
    subject = [{"kind": "ServiceAccount", "name": RECONCILER, "namespace": ns}]
    kinds = [m["kind"] for m in namespace_guardrails(spec)] + (["Secret"] if with_pull_secret else [])
    core = sorted(GUARDRAIL_RESOURCES[k] for k in kinds if k != "NetworkPolicy")
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": core, "verbs": ["create"]},
    ]
    if "NetworkPolicy" in kinds:
        rules.append({"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["create"]})
    if with_pull_secret:
        # A stale pull Secret (a rotated robot) is replaced: read and update it, by name only.
        rules.append({"apiGroups": [""], "resources": ["secrets"], "resourceNames": [names.HARBOR_PULL],
                      "verbs": ["get", "update"]})  # fmt: skip
    cluster_role_name = f"{spec.provider_name}:{RECONCILER}"
    found: list[Manifest] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": objects._meta(spec, RECONCILER, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": objects._meta(spec, cluster_role_name),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": objects._meta(spec, cluster_role_name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role_name},
            "subjects": subject,
        },
    ]
    if with_pull_secret:
        source_rule = {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [names.GUARDRAIL_PULL_SOURCE],
            "verbs": ["get"],
        }
        found += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": objects._meta(spec, f"{RECONCILER}-pull-source", ns),
                "rules": [source_rule],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": objects._meta(spec, f"{RECONCILER}-pull-source", ns),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{RECONCILER}-pull-source",
                },
                "subjects": subject,
            },
        ]
    return found


def reconciler_cronjob(spec: ClusterSpec) -> Manifest:
    """Every minute, one pass of :data:`RECONCILE_SCRIPT` (a new namespace waits at most about a minute)."""
    container = {
        "name": "reconcile",
        "image": images.pinned(IMAGE),
        "command": ["/bin/bash", f"{CONFIG_DIR}/reconcile.sh"],
        "env": [
            {"name": "GUARDRAILS_CONFIG", "value": CONFIG_DIR},
            {"name": "HOME", "value": "/tmp"},  # kubectl's discovery cache; the root file system is read-only
        ],
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 1001,  # Bitnami's non-root user
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pod = {
        "serviceAccountName": RECONCILER,
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": RECONCILER}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": objects._meta(spec, RECONCILER, spec.platform_namespace),
        "spec": {
            "schedule": SCHEDULE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 120,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {"backoffLimit": 1, "activeDeadlineSeconds": 300, "template": {"spec": pod}},
            },
        },
    }


def reconciler(spec: ClusterSpec, with_pull_secret: bool) -> list[Manifest]:
    """Everything the reconciler needs but the source Secret, in the order to create them."""
    return [
        *reconciler_rbac(spec, with_pull_secret),
        reconciler_config(spec, with_pull_secret),
        reconciler_cronjob(spec),
    ]
