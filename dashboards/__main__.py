"""``python -m dashboards``: regenerate every dashboard and rule file (``--check`` to verify)."""

import sys

from dashboards.generate import main

sys.exit(main())
