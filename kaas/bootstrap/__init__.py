"""The bootstrap layer: PKI, cloud-init per node tier, the external etcd tier and its backups."""
