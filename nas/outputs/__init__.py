"""Outputs: reading a finished or running experiment, exporting its best models, loading them, the report."""
