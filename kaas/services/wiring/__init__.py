"""One module per managed service: a function that wires it into the cluster.

Each ``wire_*`` function takes the shared :class:`~kaas.services.wiring.deps.ServiceDeps`
(the Kubernetes provider, the platform namespace, the readiness gates) plus what it alone
needs from the other layers, creates the service's ``kaas:services:<Service>`` group and
resources, and returns a small typed result with what later services need.
``kaas.services.component.ManagedServices`` calls them in dependency order.
"""
