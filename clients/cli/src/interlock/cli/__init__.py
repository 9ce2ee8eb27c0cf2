"""The ``interlock`` command: Interlock's REST API from a terminal, a script or CI."""
