"""Operator tools behind the console script: one module per command group (``cli/X_cmd.py`` ↔ ``ops/X.py``)."""
