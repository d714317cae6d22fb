"""One cluster, one zone: clusters on one domain never share a Designate object.

Designate's user guide (Managing Zones): a zone is owned by exactly one project, and
"one tenant cannot create zones that lie within the zone of another tenant". A stack
that created the customer's whole ``<domain>.`` zone collided with the next cluster
on that domain and deleted the other cluster's records on destroy; each stack now
owns ``<cluster>.<domain>.`` or writes records into a zone it does not own.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from kaas.offline import Plan
from kaas.offline.plan import plan_spec
from kaas.spec import SpecError
from tests.helpers import make_spec

ZONE = "openstack:dns/zone:Zone"
RECORD = "openstack:dns/recordSet:RecordSet"


def openstack_names(plan: Plan) -> dict[str, set[str]]:
    """Every OpenStack resource's name (or Designate name) per type: what would collide in one project."""
    names: dict[str, set[str]] = defaultdict(set)
    for record in plan.resources:
        if record.custom and record.type.startswith("openstack:") and isinstance(record.inputs.get("name"), str):
            names[record.type].add(record.inputs["name"])
    return names


def test_two_clusters_on_one_domain_share_no_openstack_resource() -> None:
    alpha = plan_spec(make_spec(name="alpha", domain="k8s.acme.example"))
    beta = plan_spec(make_spec(name="beta", domain="k8s.acme.example"))
    alpha_names, beta_names = openstack_names(alpha), openstack_names(beta)
    assert alpha_names[ZONE] == {"alpha.k8s.acme.example."} and beta_names[ZONE] == {"beta.k8s.acme.example."}
    assert len(alpha_names) >= 10  # zones, records, networks, instances, containers, roles, ...
    for kind in set(alpha_names) | set(beta_names):
        assert not alpha_names[kind] & beta_names[kind], kind
    # Each record lives in its own cluster's zone, and every URN is the stack's own.
    for plan in (alpha, beta):
        [zone] = plan.by_type(ZONE)
        for record in plan.by_type(RECORD):
            assert record.property_dependencies["zoneId"] == [zone.urn]
            assert record.inputs["name"].endswith("." + zone.inputs["name"])
    assert not {r.urn for r in alpha.resources} & {r.urn for r in beta.resources}


def test_the_customer_domain_is_never_a_zone_of_the_stack() -> None:
    plan = plan_spec(make_spec(name="alpha", domain="k8s.acme.example"))
    assert "k8s.acme.example." not in {r.inputs["name"] for r in plan.by_type(ZONE)}
    assert plan.outputs["openstack"]["dnsZone"]["name"] == "alpha.k8s.acme.example."


def test_records_in_an_existing_zone_only_add_the_clusters_names() -> None:
    plans = [
        plan_spec(make_spec(name=name, domain="k8s.acme.example", dns={"existing_zone_id": "shared-zone"}))
        for name in ("alpha", "beta")
    ]
    names = []
    for plan in plans:
        assert plan.by_type(ZONE) == []  # not owned: destroying the stack leaves the zone
        assert {r.inputs["zoneId"] for r in plan.by_type(RECORD)} == {"shared-zone"}
        names.append({r.inputs["name"] for r in plan.by_type(RECORD)})
        assert plan.outputs["openstack"]["dnsZone"]["name"] == "k8s.acme.example."
    assert names[0] == {"api.alpha.k8s.acme.example.", "*.alpha.k8s.acme.example."}
    assert not names[0] & names[1]


def test_an_existing_zone_must_contain_the_cluster() -> None:
    with pytest.raises(SpecError) as caught:
        make_spec(domain="k8s.acme.example", dns={"existing_zone_id": "z", "existing_zone_name": "other.example"})
    assert caught.value.problems == [
        "dns.existing_zone_name: other.example does not contain the cluster's names t1.k8s.acme.example; "
        "use k8s.acme.example or a parent of it"
    ]
    spec = make_spec(domain="k8s.acme.example", dns={"existing_zone_id": "z", "existing_zone_name": "acme.example"})
    assert spec.dns.existing_zone_name == "acme.example"
    with pytest.raises(SpecError, match=r"give its dns\.existing_zone_id too"):
        make_spec(dns={"existing_zone_name": "example.com"})
