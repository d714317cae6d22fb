"""kaas: a managed Kubernetes platform on OpenStack, one Pulumi stack per customer."""
