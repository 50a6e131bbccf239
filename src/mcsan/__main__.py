"""`python -m mcsan` runs the CLI."""

import sys

from mcsan.cli import main

sys.exit(main())
