"""``python -m bench``: run every workload on both systems and write the report."""

import sys

from bench.runner import main

sys.exit(main())
