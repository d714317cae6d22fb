from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from kaas.openstack.addressing import plan_addresses
from tests.helpers import make_spec


@given(etcd=st.sampled_from([3, 5, 7, 9]), masters=st.integers(3, 32), workers=st.integers(1, 900))
def test_addresses_are_unique_inside_the_subnet_and_avoid_the_gateway(etcd: int, masters: int, workers: int) -> None:
    spec = make_spec(etcd={"count": etcd}, masters={"count": masters}, workers={"count": workers})
    plan = plan_addresses(spec)
    network = ipaddress.IPv4Network(spec.networking.node_cidr)
    every = [plan.api_vip, *plan.etcd, *plan.masters, *plan.workers]
    assert len(set(every)) == len(every) == 1 + etcd + masters + workers
    assert all(ipaddress.IPv4Address(a) in network for a in every)
    gateway, broadcast = network.network_address + 1, network.broadcast_address
    assert all(ipaddress.IPv4Address(a) not in (gateway, broadcast) for a in every)


def test_growing_a_tier_moves_no_other_address() -> None:
    before = plan_addresses(make_spec(workers={"count": 3}))
    after = plan_addresses(make_spec(workers={"count": 4}, masters={"count": 5}))
    assert after.workers[:3] == before.workers and after.etcd == before.etcd
    assert after.masters[:3] == before.masters and after.api_vip == before.api_vip
