"""``python -m bench``: run every workload on both systems and write the report.

``python -m bench metadata [options]`` runs only the metadata benchmark (bench/metadata.py).
"""

import sys

if sys.argv[1:2] == ["metadata"]:
    from bench.metadata import main as metadata_main

    sys.exit(metadata_main(sys.argv[2:]))

from bench.runner import main

sys.exit(main())
