"""``python -m ptshim``: the same as the ``ptshim`` console script."""

import sys

from ptshim.cli import main

sys.exit(main())
