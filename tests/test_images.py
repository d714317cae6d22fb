"""Supply chain: every image of the plan, read from the charts rendered by real Helm with the planned values.

Images are collected from every ``image`` field of the rendered manifests (CRDs
excluded) and from arguments that carry a registry reference (operators that start
images of their own: prometheus-operator's config reloader and Thanos, cert-manager's
ACME solver), for a plan with every service enabled and one with flannel as the CNI.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

from kaas.offline import Plan, ResourceRecord
from kaas.services import images, objects, values
from kaas.services.images import IMAGES, PERSONAL
from tests.helm import render_release
from tests.helpers import make_spec
from tests.services_helpers import default_plan, plan_services, releases

# A reference with a registry host (a dot or a port in the first segment), a path and a tag or digest.
ARGUMENT_IMAGE = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d+)?/[a-z0-9._/-]+(?::[\w.-]+|@sha256:[0-9a-f]{64})+$")
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                found.add(item)
            else:
                _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)
    elif isinstance(value, str):
        found.update(part for part in re.split(r"[=\s,]", value) if ARGUMENT_IMAGE.match(part))


def release_images(record: ResourceRecord) -> set[str]:
    found: set[str] = set()
    for manifest in render_release(record):
        if manifest.get("kind") != "CustomResourceDefinition":
            _collect(manifest, found)
    return found


def plan_images(plan: Plan) -> dict[str, set[str]]:
    """Image references per release, plus the platform's own objects."""
    per_source = {name: release_images(record) for name, record in releases(plan).items()}
    own: set[str] = set()
    for record in plan.resources:
        if record.type.startswith("kubernetes:") and not record.type.endswith(":Release"):
            _collect(record.inputs.get("spec"), own)
    per_source["platform objects"] = own
    return per_source


@cache
def all_images() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for plan in (default_plan(), plan_services(make_spec(networking={"cni": "flannel"}))):
        for source, refs in plan_images(plan).items():
            found.setdefault(source, set()).update(refs)
    return found


def _unpinned(ref: str) -> str:
    return PINNED.sub("", ref)


def test_every_rendered_image_is_in_the_reviewed_inventory_and_nothing_else_is() -> None:
    rendered = {_unpinned(ref): source for source, refs in all_images().items() for ref in refs}
    unknown = {ref: source for ref, source in rendered.items() if ref not in IMAGES}
    assert not unknown, f"images not in kaas.services.images.IMAGES (review them, add their digest): {unknown}"
    assert set(IMAGES) - set(rendered) == set(), "listed images that nothing renders any more"


@pytest.mark.xfail(
    any(digest is None for digest in IMAGES.values()),
    reason="no registry reachable from the build machines and no authoritative offline source of the digests: "
    "fill kaas.services.images.IMAGES with `crane digest` (see its docstring)",
    strict=True,
)
def test_every_image_is_pinned_by_digest() -> None:
    unpinned = sorted({ref for refs in all_images().values() for ref in refs if not PINNED.search(ref)})
    assert unpinned == []


def test_a_known_digest_reaches_the_images_the_platform_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinning path works: a digest in the table is in the rendered reference (fixture digest, not a pin)."""
    digest = "sha256:" + "ab" * 32
    for ref in ("registry.k8s.io/provider-os/k8s-keystone-auth:v1.36.0", "lirt/velero-plugin-for-openstack:v0.8.2"):
        monkeypatch.setitem(IMAGES, ref, digest)
    spec = make_spec()
    velero = values.velero_values(spec, "checksum")["initContainers"][0]["image"]
    assert velero == f"lirt/velero-plugin-for-openstack:v0.8.2@{digest}"
    pod = objects.keystone_auth_daemon_set(spec, "project", "role", "tls-cert")["spec"]["template"]["spec"]
    daemon = next(c["image"] for c in pod["containers"] if c["name"] == "k8s-keystone-auth")
    assert daemon == f"registry.k8s.io/provider-os/k8s-keystone-auth:v1.36.0@{digest}"
    monkeypatch.setitem(IMAGES, "curlimages/curl:8.17.0", "sha256:short")
    with pytest.raises(ValueError, match="not a sha256 digest"):
        images.pinned("curlimages/curl:8.17.0")
    with pytest.raises(KeyError, match=r"not in kaas\.services\.images\.IMAGES"):
        images.pinned("example.org/unreviewed:1")


def test_personal_images_can_be_replaced_by_a_mirror() -> None:
    mirror = "registry.ops.example/mirror/velero-plugin-for-openstack:v0.8.2@sha256:" + "cd" * 32
    spec = make_spec(services={"backups": {"plugin_image": mirror}})
    assert values.velero_values(spec, "checksum")["initContainers"][0]["image"] == mirror
    plan = plan_services(spec)
    rendered = release_images(releases(plan)["velero"])
    assert mirror in rendered and not rendered & PERSONAL


def test_personal_images_are_only_those_reviewed() -> None:
    personal_accounts = {"lirt"}
    rendered = {_unpinned(ref) for refs in all_images().values() for ref in refs}
    assert {ref for ref in rendered if ref.split("/")[0] in personal_accounts} == PERSONAL


def _schedule(plan: Plan) -> dict[str, Any]:
    (schedule,) = [m for m in render_release(releases(plan)["velero"]) if m.get("kind") == "Schedule"]
    return schedule


def test_velero_schedule_leaves_secrets_to_the_encrypted_etcd_snapshots() -> None:
    """Velero stores resources in clear: the rendered Schedule excludes Secrets unless the spec opts in."""
    assert _schedule(default_plan())["spec"]["template"]["excludedResources"] == ["secrets"]
    opted_in = plan_services(make_spec(services={"backups": {"include_secrets": True}}))
    assert "excludedResources" not in _schedule(opted_in)["spec"]["template"]


def test_every_image_would_carry_its_digest_once_the_table_is_filled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Coverage of the pinning path, through real Helm: with a (fixture) digest for every image, every image
    each chart renders carries its own digest, so filling IMAGES is all that pinning still needs."""
    fixture = {ref: "sha256:" + f"{n:064x}" for n, ref in enumerate(sorted(IMAGES))}
    for ref, digest in fixture.items():
        monkeypatch.setitem(IMAGES, ref, digest)
    rendered: set[str] = set()
    for plan in (plan_services(make_spec()), plan_services(make_spec(networking={"cni": "flannel"}))):
        for refs in plan_images(plan).values():
            rendered |= refs
    expected = {f"{ref}@{digest}" for ref, digest in fixture.items()}
    assert sorted(rendered - expected) == []
    assert rendered == expected


def test_chart_image_table_names_only_inventoried_images() -> None:
    listed = {image for paths in images.CHART_IMAGES.values() for image, _key in paths.values()}
    assert listed <= set(IMAGES)
