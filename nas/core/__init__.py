"""Core: errors and the "did you mean" hint, registries, atomic files, the JSON normaliser and option checks.
Imports nothing else of the framework."""
