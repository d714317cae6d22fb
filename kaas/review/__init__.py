"""Reviewing changes: the offline structural diff, affected stacks, production-readiness rules."""
