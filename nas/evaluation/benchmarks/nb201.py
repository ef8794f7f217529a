"""The NAS-Bench-201 table shipped with the package: 15,625 cells, their accuracies, FLOPs and parameters."""

from __future__ import annotations

import csv
import io
import lzma
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from nas.graph.nb201 import nb201_string  # re-exported: the string keys the table

__all__ = ["NB201Record", "load_nb201", "nb201_string"]

_FILE = "nb201.csv.xz"


@dataclass(frozen=True)
class NB201Record:
    """One NAS-Bench-201 cell. Accuracies in percent; ``flops_M`` and ``params_M`` are ``None`` where the source has
    no value."""

    index: int
    arch_str: str
    cifar10_val200: float
    cifar10_test200: float
    cifar100_test200: float
    imagenet16_test200: float
    cifar10_val12: float
    cifar10_test12: float
    cifar100_val12: float
    cifar100_test12: float
    imagenet16_val12: float
    imagenet16_test12: float
    flops_M: float | None
    params_M: float | None
    unique_str: str
    params: int


def _num(text: str) -> float | None:
    return float(text) if text else None


@lru_cache(maxsize=1)
def load_nb201() -> tuple[NB201Record, ...]:
    """All 15,625 records in NAS-Bench-201 index order (read once, then cached; about 0.2 s)."""
    raw = resources.files("nas.evaluation.benchmarks").joinpath(_FILE).read_bytes()
    reader = csv.reader(io.StringIO(lzma.decompress(raw).decode()))
    next(reader)
    records = []
    for i, row in enumerate(reader):
        a = [float(x) for x in row[1:11]]  # accuracies: always present (FLOPs and params_M are missing for some)
        records.append(NB201Record(i, row[0], a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                                   _num(row[11]), _num(row[12]), row[13], int(row[14])))
    return tuple(records)
