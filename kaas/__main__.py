import sys

from kaas.cli import main

sys.exit(main())
