"""The guardrail reconciler: one definition shared with the program, run for real against kube-apiserver.

The rendered RBAC, ConfigMap and source Secret are applied to the real control plane
(tests/controlplane.py); the ConfigMap is read back and laid out as its volume would be;
the script runs under bash with the real kubectl, authenticated by a real token of the
reconciler's ServiceAccount (TokenRequest API, ``kubectl create token``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kaas.offline.planfile import plain
from kaas.services import guardrails, names, objects
from kaas.spec import ClusterSpec
from tests.controlplane import ControlPlane
from tests.helm import kubectl_bin
from tests.helpers import make_spec
from tests.services_helpers import default_plan

pytestmark = pytest.mark.xdist_group("controlplane")


def _pull_config(robot: str, auth: str) -> str:
    return json.dumps({"auths": {"registry.t1.example.net": {"username": f"robot${robot}", "auth": auth}}})


PULL_CONFIG = _pull_config("kaas-pull-20261201", "eA==")
ROTATED = _pull_config("kaas-pull-20271102", "eQ==")  # the next generation: new robot, new secret
NEW = "team-blue"  # created "later", after the program ran
STALE = "team-red"  # holds the copy of an older generation
OTHER = "team-red-credentials"  # a customer's own Secret beside the pull Secret
GREEN = "team-green"
OPTED_OUT = "team-legacy"
LABELLED_PLATFORM = "ops-tools"


def _spec() -> ClusterSpec:
    return make_spec(services={"default_deny_network_policy": True})


# --- One definition ------------------------------------------------------------------


def test_the_programs_apps_guardrails_are_the_reconcilers_manifests() -> None:
    plan = default_plan()
    spec = make_spec(services={"customer_namespaces": ["shop"], "default_deny_network_policy": True})
    (config,) = [plain(r.inputs) for r in plan.resources if r.name == f"{spec.name}-guardrails-configmap"]
    shipped = {k: json.loads(v) for k, v in config["data"].items() if k.startswith("guardrail-")}
    assert set(shipped) == {"guardrail-resourcequota.json", "guardrail-limitrange.json", "guardrail-networkpolicy.json"}
    for namespace in ("apps", "shop"):
        created = {
            plain(r.inputs, show_secrets=True)["kind"]: plain(r.inputs, show_secrets=True)
            for r in plan.resources
            if r.type in ("kubernetes:core/v1:ResourceQuota", "kubernetes:core/v1:LimitRange")
            or r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
            if plain(r.inputs)["metadata"].get("namespace") == namespace
        }
        assert {k: guardrails.in_namespace(m, namespace) for k, m in ((m["kind"], m) for m in shipped.values())} == {
            k: {key: value for key, value in m.items() if key in ("apiVersion", "kind", "metadata", "spec")}
            for k, m in created.items()
        }


def test_without_default_deny_the_reconciler_neither_ships_nor_may_create_network_policies() -> None:
    spec = make_spec(services={"default_deny_network_policy": False})
    config = guardrails.reconciler_config(spec, with_pull_secret=False)
    assert "guardrail-networkpolicy.json" not in config["data"] and "pull-secret.json" not in config["data"]
    rules = [r for m in guardrails.reconciler_rbac(spec, False) for r in m.get("rules", [])]
    assert {res for r in rules for res in r["resources"]} == {"namespaces", "resourcequotas", "limitranges"}
    assert not any(m["kind"] == "Role" for m in guardrails.reconciler_rbac(spec, False))


@pytest.mark.parametrize("with_pull_secret", [True, False])
def test_rendered_reconciler_objects_are_valid_kubernetes(with_pull_secret: bool) -> None:
    spec = _spec()
    manifests = [*guardrails.reconciler(spec, with_pull_secret), guardrails.pull_source(spec, PULL_CONFIG)]
    config = guardrails.reconciler_config(spec, with_pull_secret)
    manifests += [guardrails.in_namespace(json.loads(v), NEW) for k, v in config["data"].items() if k.endswith(".json")]
    for manifest in manifests:
        kubernetes_validate.validate(yaml.safe_load(yaml.safe_dump(manifest)), spec.versions.kubernetes, strict=True)


# --- The real cluster ----------------------------------------------------------------


def _kubectl(cp: ControlPlane, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(kubectl_bin()), f"--kubeconfig={cp.admin_kubeconfig}", f"--cache-dir={cp.root / 'kube-cache'}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


def _apply(cp: ControlPlane, manifests: list[dict[str, Any]]) -> None:
    stream = yaml.safe_dump_all([yaml.safe_load(yaml.safe_dump(m)) for m in manifests], sort_keys=False)
    _kubectl(cp, "apply", "--server-side", "--field-manager=kaas-test", "-f", "-", stdin=stream)


def _namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


class Reconciler:
    """The reconciler as its CronJob runs it: the ConfigMap's files, the ServiceAccount's token."""

    def __init__(self, cp: ControlPlane, spec: ClusterSpec, work: Path) -> None:
        self.cp, self.spec, self.work = cp, spec, work
        config = json.loads(
            _kubectl(cp, "get", "configmap", guardrails.RECONCILER, "-n", spec.platform_namespace, "-o", "json")
        )
        self.config_dir = work / "config"
        self.config_dir.mkdir(parents=True)
        for key, value in config["data"].items():
            (self.config_dir / key).write_text(value)
        token = _kubectl(
            cp, "create", "token", guardrails.RECONCILER, "-n", spec.platform_namespace, "--duration=10m"
        ).strip()
        admin = yaml.safe_load(cp.admin_kubeconfig.read_text())
        cluster = admin["clusters"][0]
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": "reconciler", "user": {"token": token}}],
            "contexts": [{"name": "reconciler", "context": {"cluster": cluster["name"], "user": "reconciler"}}],
            "current-context": "reconciler",
        }
        self.kubeconfig = work / "reconciler.conf"
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
        self.kubeconfig.chmod(0o600)
        (work / "home").mkdir()
        self.env = {
            "PATH": f"{kubectl_bin().parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(work / "home"),
            "KUBECONFIG": str(self.kubeconfig),
            "GUARDRAILS_CONFIG": str(self.config_dir),
        }

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.config_dir / "reconcile.sh")],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def can_i(self, *args: str) -> bool:
        result = subprocess.run(
            [str(kubectl_bin()), "auth", "can-i", *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert result.stdout.strip() in ("yes", "no"), result.stderr
        return result.returncode == 0


def _created(output: str) -> dict[str, set[str]]:
    """``ns: created kind/name`` lines of the script, by namespace."""
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        namespace, sep, rest = line.partition(": created ")
        if sep:
            found.setdefault(namespace, set()).add(rest)
    return found


EXPECTED = {
    "resourcequota/default-quota",
    "limitrange/default-limits",
    "networkpolicy.networking.k8s.io/default-deny",
    f"secret/{names.HARBOR_PULL}",
}


@pytest.fixture(scope="module")
def reconciler(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reconciler]:
    spec = _spec()
    cp = control_plane
    before = set(_kubectl(cp, "get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split())
    _apply(cp, [objects.platform_namespace(spec)])
    _apply(cp, [guardrails.pull_source(spec, PULL_CONFIG), *guardrails.reconciler(spec, with_pull_secret=True)])
    _apply(
        cp,
        [
            _namespace(NEW),
            _namespace(OPTED_OUT, {guardrails.opt_out_label(spec): guardrails.OPT_OUT_VALUE}),
            _namespace(LABELLED_PLATFORM, {names.platform_label(spec): "true"}),
        ],
    )
    runner = Reconciler(cp, spec, tmp_path_factory.mktemp("guardrails"))
    runner.existing = before - set(spec.reserved_namespaces)  # type: ignore[attr-defined]
    try:
        yield runner
    finally:
        for namespace in (NEW, GREEN, STALE, OPTED_OUT, LABELLED_PLATFORM):
            _kubectl(cp, "delete", "namespace", namespace, "--wait=false", check=False)
        # Namespaces other tests made: what the reconciler added there goes again.
        for namespace in runner.existing:  # type: ignore[attr-defined]
            for created in sorted(EXPECTED):
                _kubectl(cp, "delete", "-n", namespace, created, "--ignore-not-found", check=False)
        for manifest in reversed(guardrails.reconciler(spec, with_pull_secret=True)):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            namespace = manifest["metadata"].get("namespace")
            _kubectl(cp, "delete", kind, name, *(["-n", namespace] if namespace else []), check=False)


def _guardrails_in(cp: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    found = json.loads(
        _kubectl(cp, "get", "resourcequotas,limitranges,networkpolicies,secrets", "-n", namespace, "-o", "json")
    )
    return {
        f"{item['kind'].lower()}/{item['metadata']['name']}": item
        for item in found["items"]
        if item["metadata"]["name"] in ("default-quota", "default-limits", "default-deny", names.HARBOR_PULL)
    }


def test_reconciler_gives_a_later_namespace_the_guardrails_and_nothing_to_platform_or_opted_out(
    reconciler: Reconciler,
) -> None:
    cp, spec = reconciler.cp, reconciler.spec
    first = reconciler.run()
    assert first.returncode == 0, first.stderr
    created = _created(first.stdout)
    assert created[NEW] == EXPECTED
    # Every namespace that got something is a customer's: the new one, or one that existed already.
    assert set(created) - {NEW} <= reconciler.existing  # type: ignore[attr-defined]
    for namespace in (OPTED_OUT, LABELLED_PLATFORM, spec.platform_namespace, "kube-system", "kube-public"):
        assert namespace not in created
        assert _guardrails_in(cp, namespace) == {}, namespace

    present = _guardrails_in(cp, NEW)
    assert set(present) == {"resourcequota/default-quota", "limitrange/default-limits",
                            "networkpolicy/default-deny", f"secret/{names.HARBOR_PULL}"}  # fmt: skip
    expected = {m["kind"]: m for m in guardrails.namespace_guardrails(spec)}
    assert present["resourcequota/default-quota"]["spec"]["hard"] == expected["ResourceQuota"]["spec"]["hard"]
    assert present["limitrange/default-limits"]["spec"] == expected["LimitRange"]["spec"]
    assert present["networkpolicy/default-deny"]["spec"] == expected["NetworkPolicy"]["spec"]
    pull = present[f"secret/{names.HARBOR_PULL}"]
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    assert base64.b64decode(pull["data"][".dockerconfigjson"]).decode() == PULL_CONFIG
    assert pull["metadata"]["labels"] == {"app.kubernetes.io/managed-by": spec.provider_name}

    # The quota controller writes status.used: identity and spec are what a rerun must not touch.
    def identities(found: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
        return {k: (v["metadata"]["uid"], json.dumps(v.get("spec", v.get("data")))) for k, v in found.items()}

    versions = identities(present)
    second = reconciler.run()
    assert second.returncode == 0, second.stderr
    assert _created(second.stdout) == {} and "0 object(s) created" in second.stdout
    assert identities(_guardrails_in(cp, NEW)) == versions

    # A customer's own quota stays as they tuned it; a deleted LimitRange comes back.
    _kubectl(cp, "patch", "resourcequota", "default-quota", "-n", NEW, "--type=merge",
             "-p", '{"spec":{"hard":{"pods":"7"}}}')  # fmt: skip
    _kubectl(cp, "delete", "limitrange", "default-limits", "-n", NEW)
    third = reconciler.run()
    assert third.returncode == 0, third.stderr
    assert _created(third.stdout) == {NEW: {"limitrange/default-limits"}}
    assert _guardrails_in(cp, NEW)["resourcequota/default-quota"]["spec"]["hard"]["pods"] == "7"


def _secret(name: str, namespace: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": type_, "data": encoded}  # fmt: skip


def _get_secret(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_kubectl(cp, "get", "secret", name, "-n", namespace, "-o", "json"))
    return found


def _pull_in(cp: ControlPlane, namespace: str) -> str:
    return base64.b64decode(_get_secret(cp, namespace, names.HARBOR_PULL)["data"][".dockerconfigjson"]).decode()


def _replaced(output: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        namespace, sep, rest = line.partition(": replaced ")
        if sep:
            found.setdefault(namespace, set()).add(rest)
    return found


def test_a_stale_pull_secret_is_replaced_and_no_other_secret_is_touched(reconciler: Reconciler) -> None:
    """After a rotation a namespace holding an older generation's copy gets the source's content in one
    run; a Secret of another name beside it, other guardrails and opted-out namespaces stay as they are."""
    cp, spec = reconciler.cp, reconciler.spec
    old = _pull_config("kaas-pull", "b2xk")  # the robot before generations
    _apply(cp, [_namespace(STALE)])
    # What an earlier reconciler run (create-only, older generation) left, and a customer's own Secret.
    _kubectl(cp, "create", "-f", "-", stdin=json.dumps(guardrails.in_namespace(
        json.loads(guardrails.pull_secret_template(spec).replace(
            guardrails.PULL_PLACEHOLDER, base64.b64encode(old.encode()).decode())), STALE)))  # fmt: skip
    _kubectl(cp, "create", "-f", "-", stdin=json.dumps(_secret(OTHER, STALE, {"token": "customer's own"})))
    _kubectl(cp, "create", "-f", "-", stdin=json.dumps(
        _secret(names.HARBOR_PULL, OPTED_OUT, {".dockerconfigjson": old}, "kubernetes.io/dockerconfigjson")))  # fmt: skip
    other_before = _get_secret(cp, STALE, OTHER)
    assert not reconciler.can_i("update", f"secret/{OTHER}", "-n", STALE)
    assert reconciler.can_i("update", f"secret/{names.HARBOR_PULL}", "-n", STALE)

    first = reconciler.run()
    assert first.returncode == 0, first.stderr
    replaced = _replaced(first.stdout)
    assert replaced[STALE] == {f"secret/{names.HARBOR_PULL}"}
    assert set(replaced) - {STALE} <= reconciler.existing  # type: ignore[attr-defined]
    assert _pull_in(cp, STALE) == PULL_CONFIG
    pull = _get_secret(cp, STALE, names.HARBOR_PULL)
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    assert pull["metadata"]["labels"] == {"app.kubernetes.io/managed-by": spec.provider_name}
    assert _created(first.stdout).get(STALE, set()) == EXPECTED - {f"secret/{names.HARBOR_PULL}"}
    other_after = _get_secret(cp, STALE, OTHER)
    assert other_after["metadata"]["resourceVersion"] == other_before["metadata"]["resourceVersion"]
    assert other_after["data"] == other_before["data"]
    assert _pull_in(cp, OPTED_OUT) == old  # opted out: the customer's own, untouched
    assert f"{len(replaced)} replaced" in first.stdout

    # Up to date: nothing is written again.
    version = pull["metadata"]["resourceVersion"]
    second = reconciler.run()
    assert second.returncode == 0, second.stderr
    assert _replaced(second.stdout) == {} and "0 object(s) created, 0 replaced" in second.stdout
    assert _get_secret(cp, STALE, names.HARBOR_PULL)["metadata"]["resourceVersion"] == version

    # A rotation: the program writes the next generation to the source; one run brings every copy along.
    source = guardrails.pull_source(spec, ROTATED)
    try:
        _apply(cp, [source])
        third = reconciler.run()
        assert third.returncode == 0, third.stderr
        assert {NEW, STALE} <= set(_replaced(third.stdout))
        assert _pull_in(cp, NEW) == _pull_in(cp, STALE) == ROTATED
        assert _pull_in(cp, OPTED_OUT) == old
        assert (
            _get_secret(cp, STALE, OTHER)["metadata"]["resourceVersion"] == other_before["metadata"]["resourceVersion"]
        )
    finally:
        _apply(cp, [guardrails.pull_source(spec, PULL_CONFIG)])
        reconciler.run()
    assert _pull_in(cp, NEW) == PULL_CONFIG


def test_reconciler_service_account_may_do_only_what_it_needs(reconciler: Reconciler) -> None:
    ns, source = reconciler.spec.platform_namespace, names.GUARDRAIL_PULL_SOURCE
    allowed = [
        ("list", "namespaces"),
        ("watch", "namespaces"),
        ("create", "resourcequotas", "-n", NEW),
        ("create", "limitranges", "-n", NEW),
        ("create", "networkpolicies.networking.k8s.io", "-n", NEW),
        ("create", "secrets", "-n", NEW),
        ("get", f"secret/{source}", "-n", ns),
        # A stale pull Secret is replaced (kubectl replace: get, then update), by name only.
        ("get", f"secret/{names.HARBOR_PULL}", "-n", NEW),
        ("update", f"secret/{names.HARBOR_PULL}", "-n", NEW),
    ]
    refused = [
        ("get", "secrets", "-n", NEW),
        ("update", "secrets", "-n", NEW),
        ("update", f"secret/{OTHER}", "-n", NEW),
        ("get", f"secret/{OTHER}", "-n", NEW),
        ("patch", f"secret/{names.HARBOR_PULL}", "-n", NEW),
        ("delete", f"secret/{names.HARBOR_PULL}", "-n", NEW),
        ("list", "secrets", "-n", NEW),
        ("list", "secrets", "-n", ns),
        ("update", f"secret/{names.HARBOR_ROBOT}", "-n", ns),
        ("update", "resourcequotas/default-quota", "-n", NEW),
        ("update", "limitranges/default-limits", "-n", NEW),
        ("update", "networkpolicies.networking.k8s.io/default-deny", "-n", NEW),
        ("get", f"secret/{names.HARBOR_ROBOT}", "-n", ns),
        ("list", "secrets", "--all-namespaces"),
        ("update", f"secret/{source}", "-n", ns),
        ("delete", "resourcequotas", "-n", NEW),
        ("patch", "limitranges", "-n", NEW),
        ("update", "networkpolicies.networking.k8s.io", "-n", NEW),
        ("list", "resourcequotas", "-n", NEW),
        ("patch", "namespaces"),
        ("create", "namespaces"),
        ("delete", "namespaces"),
        ("create", "pods", "-n", NEW),
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", NEW),
        ("create", "serviceaccounts/token", "-n", ns),
        ("impersonate", "serviceaccounts"),
        ("create", "configmaps", "-n", ns),
    ]
    assert [a for a in allowed if not reconciler.can_i(*a)] == []
    assert [r for r in refused if reconciler.can_i(*r)] == []


def test_a_secret_other_than_the_source_is_refused_and_the_other_guardrails_still_go_out(
    reconciler: Reconciler, tmp_path: Path
) -> None:
    """Pointed at the pull robot's own Secret, the script is refused by RBAC (403), copies nothing,
    still creates the other guardrails, and fails so the missing pull Secret is noticed."""
    cp = reconciler.cp
    _apply(cp, [_namespace(GREEN)])
    config = tmp_path / "config"
    config.mkdir()
    for item in reconciler.config_dir.iterdir():
        (config / item.name).write_text(item.read_text())
    (config / "pull-source-name").write_text(names.HARBOR_ROBOT)
    result = reconciler.run(GUARDRAILS_CONFIG=str(config))
    assert result.returncode == 1
    assert "forbidden" in result.stderr.lower() and "no .dockerconfigjson to copy" in result.stderr
    assert _created(result.stdout)[GREEN] == EXPECTED - {f"secret/{names.HARBOR_PULL}"}
    assert f"secret/{names.HARBOR_PULL}" not in _guardrails_in(cp, GREEN)
