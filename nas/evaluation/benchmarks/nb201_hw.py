"""HW-NAS-Bench's device costs of every NAS-Bench-201 cell, shipped with the package (see ``ATTRIBUTION.md``).

One table per dataset (the network's input size and classes change its cost): ``nb201_hw_<dataset>.csv.xz``,
15,625 rows in NAS-Bench-201 index order (row ``i`` is the cell of :func:`~nas.evaluation.benchmarks.load_nb201`'s
record ``i``), one column per cost in :data:`HW_METRICS`. Latencies are in milliseconds, energies in millijoules.
The Edge TPU has no measurement for 4,699 cells: those cells have no ``edgetpu_latency`` (the key is absent,
never a made-up number).
"""

from __future__ import annotations

import csv
import io
import lzma
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

__all__ = ["HW_METRICS", "HW_DATASETS", "load_nb201_hw"]

#: cost name -> (device, what, unit); the metric names the ``nb201`` evaluator reports
HW_METRICS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "jetson_tx2_latency": ("NVIDIA Jetson TX2 (edge GPU)", "measured latency", "ms"),
    "jetson_tx2_energy": ("NVIDIA Jetson TX2 (edge GPU)", "measured energy", "mJ"),
    "raspi4_latency": ("Raspberry Pi 4", "measured latency", "ms"),
    "edgetpu_latency": ("Google Edge TPU", "measured latency (missing for 4,699 cells)", "ms"),
    "pixel3_latency": ("Google Pixel 3", "measured latency", "ms"),
    "eyeriss_latency": ("Eyeriss (ASIC)", "estimated latency", "ms"),
    "eyeriss_energy": ("Eyeriss (ASIC)", "estimated energy", "mJ"),
    "eyeriss_arithmetic_intensity": ("Eyeriss (ASIC)", "estimated arithmetic intensity", "ops/byte"),
    "fpga_latency": ("FPGA", "estimated latency", "ms"),
    "fpga_energy": ("FPGA", "estimated energy", "mJ"),
})
HW_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
_ROWS = 15625


@lru_cache(maxsize=len(HW_DATASETS))
def load_nb201_hw(dataset: str) -> tuple[Mapping[str, float], ...]:
    """The costs of every cell for ``dataset``'s network, in NAS-Bench-201 index order (read once, then cached;
    about 0.1 s). A cost the source lacks is absent from the cell's mapping."""
    if dataset not in HW_DATASETS:
        raise ValueError(f"HW-NAS-Bench costs: dataset {dataset!r} is not one of {', '.join(HW_DATASETS)}")
    raw = resources.files("nas.evaluation.benchmarks").joinpath(f"nb201_hw_{dataset}.csv.xz").read_bytes()
    reader = csv.reader(io.StringIO(lzma.decompress(raw).decode()))
    header = next(reader)
    if set(header) != set(HW_METRICS):  # pragma: no cover - a damaged installation
        raise RuntimeError(f"nb201_hw_{dataset}.csv.xz: columns {header} are not {sorted(HW_METRICS)}")
    rows = tuple(MappingProxyType({name: float(text) for name, text in zip(header, row) if text})
                 for row in reader)
    if len(rows) != _ROWS:  # pragma: no cover - a damaged installation
        raise RuntimeError(f"nb201_hw_{dataset}.csv.xz: {len(rows)} rows, expected {_ROWS}")
    return rows
