"""Pulumi entry point: `pulumi up -s <stack>` deploys stacks/<stack>.yaml."""

import sys

from kaas.spec import SpecError

try:
    from kaas.program import main

    main()
except SpecError as error:
    # One line per problem, no traceback; nothing has been registered yet.
    print(error, file=sys.stderr)
    raise SystemExit(2) from None
