"""Pulumi entry point: `pulumi up -s <stack>` deploys stacks/<stack>.yaml (or config `kaas:spec`),
one rollout step further than stacks/rollout/<stack>.yaml (or config `kaas:rollout`).

The offline engine (`kaas/offline/engine.py`) runs this very file the way Pulumi's
Python language host does, so tests, `kaas plan`, `kaas diff` and the benchmarks see
exactly what `pulumi up` executes.
"""

import sys

import pulumi

from kaas.program import current_join_token, current_plan, run
from kaas.spec import SpecError

try:
    plan = current_plan()  # the spec, its rollout record, the next rollout step
    join_token = current_join_token()  # config kaas:joinToken (kaas roll), for the nodes this step builds
except SpecError as error:
    # One line per problem, no traceback; nothing has been registered yet.
    print(error, file=sys.stderr)
    raise SystemExit(2) from None

pulumi.run(lambda: run(plan, join_token))
