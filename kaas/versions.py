"""Pinned component versions: the one place they are set (a spec may override them)."""

KUBERNETES = "1.34.2"
ETCD = "3.6.5"
CONTAINERD = "2.1.4"
