"""``kaas verify``: the pre-handover checks, run against the live cluster.

Checks (:mod:`kaas.verify.checks`) are small functions over a typed context
(:mod:`kaas.verify.context`: the plan, the stack outputs, credentials and thin clients
from :mod:`kaas.verify.clients`); :mod:`kaas.verify.runner` gives each a timeout and
retries; the :class:`~kaas.verify.report.Report` feeds ``kaas handover --verify-report``.
"""
