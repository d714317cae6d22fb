"""The bootstrap layer's part of the stack outputs: etcd and its backups."""

from __future__ import annotations

from kaas.bootstrap.userdata.etcd import backup_cron
from kaas.cluster_plan import ClusterPlan
from kaas.output_model import OutputModel
from kaas.rollout import Tier


class EtcdOutput(OutputModel):
    nodes: int
    version: str
    backup_interval_hours: int
    backup_schedule: str
    backup_retention_days: int
    backup_container: str


def etcd_output(plan: ClusterPlan) -> EtcdOutput:
    """The etcd members once this update is applied, and the backup timer every member runs."""
    spec = plan.spec
    hours = spec.etcd_backup.interval_hours
    return EtcdOutput(
        nodes=len(plan.members(Tier.ETCD)),
        version=plan.oldest_version(Tier.ETCD),
        backup_interval_hours=hours,
        backup_schedule=backup_cron(hours),
        backup_retention_days=spec.etcd_backup.retention_days,
        backup_container=spec.container_name("etcd_backups"),
    )
