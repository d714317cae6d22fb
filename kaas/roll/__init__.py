"""``kaas roll``: walk a stack's rollout to the end, one targeted ``pulumi up`` per step, with health gates.

- :mod:`kaas.roll.steps`: the rollout as operations (``add``/``replace``/``remove``) and the
  ``--dry-run`` document; which resources one step targets (pure);
- :mod:`kaas.roll.position`: the position file beside the rollout record (resume after a crash);
- :mod:`kaas.roll.runner`: the loop: plan the step, gates before, ``up`` targeted, record, gates after;
- :mod:`kaas.roll.gates`: the in-cluster half of each step (etcd membership, API behind the
  load balancer, node Ready, cordon and drain);
- :mod:`kaas.roll.etcd`, :mod:`kaas.roll.kube`, :mod:`kaas.roll.octavia`: thin clients of
  the live APIs, driven in the tests against a real etcd and small fake servers;
- :mod:`kaas.roll.tokens`: a fresh, short-lived bootstrap token for each step that builds a
  master or worker, deleted once the node joined;
- :mod:`kaas.roll.automation`: the Pulumi Automation API stack the runner drives.
"""
