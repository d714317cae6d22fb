"""cloud-init user data per node tier, rendered by pure functions from typed inputs.

One module per artifact: ``yamltext`` (the YAML dumper, ``#cloud-config``, file entries,
template rendering), ``etcd`` (etcd's configuration, backup, an etcd node's user data),
``kubeadm`` (the cluster-wide settings, kubeadm's and the kubelet's configurations),
``kubeconfig`` (discovery, webhook and admin kubeconfigs, the API server's authentication
configuration) and ``nodes`` (what masters and workers share and their user data).

Structured documents are built as data and dumped with one YAML dumper; systemd units
and the shell steps that run at boot are Jinja2 templates in ``kaas/bootstrap/templates``.
Nothing here touches Pulumi: the bootstrap component resolves the generated certificates
and passes plain strings in.

Boot order on each tier: etcd nodes install the pinned etcd release (sha256 verified) and
form the cluster from the static address plan; the first master waits for etcd and runs
``kubeadm init``; the other masters and the workers retry ``kubeadm join`` until the API
answers behind the load balancer.
"""
