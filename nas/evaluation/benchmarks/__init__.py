"""Tabular benchmarks shipped inside the package (see ``ATTRIBUTION.md`` beside this file)."""

from nas.evaluation.benchmarks.nb201 import NB201Record, load_nb201, nb201_string

__all__ = ["NB201Record", "load_nb201", "nb201_string"]
