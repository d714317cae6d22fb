"""kaas production-readiness policy pack (Pulumi CrossGuard).

    pulumi preview -s acme-prod --policy-pack policy

The rules are the plain functions in ``kaas/review/policy.py`` (``kaas check``
applies the same ones to the offline plan); this file only adapts them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kaas.review.policy_pack import build_policies  # noqa: E402
from pulumi_policy import PolicyPack  # noqa: E402

PolicyPack(name="kaas-production-readiness", policies=build_policies())
