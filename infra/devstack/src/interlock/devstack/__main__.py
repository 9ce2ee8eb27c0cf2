"""``python -m interlock.devstack {up,down,status,logs,render-envoy}``."""

from interlock.devstack._cli import main

raise SystemExit(main())
