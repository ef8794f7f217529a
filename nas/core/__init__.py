"""Core: errors, registries, atomic files and option checks. Imports nothing else of the framework."""
