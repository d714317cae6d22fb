"""The OpenStack layer: one component per concern (``kaas:openstack:*``)."""
