"""Storage: the trial store (SQLite), checkpoints, the writer lock, the store/checkpoint cross-check and the
fault-injection hook of their writes. Used by the runtime (writing) and the outputs (reading)."""
