"""Tabular benchmarks shipped inside the package (see ``ATTRIBUTION.md`` beside this file)."""

from nas.evaluation.benchmarks.nb201 import NB201Record, load_nb201, nb201_string
from nas.evaluation.benchmarks.nb201_hw import HW_DATASETS, HW_METRICS, load_nb201_hw

__all__ = ["NB201Record", "load_nb201", "nb201_string", "HW_METRICS", "HW_DATASETS", "load_nb201_hw"]
