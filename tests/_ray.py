"""A quiet local Ray for the tests that run on one (imported as ``from _ray import quiet_ray``; ``tests/`` is on
the path, as for ``_experiments``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import ray

__all__ = ["quiet_ray"]


@contextlib.contextmanager
def quiet_ray(num_cpus: int, num_gpus: int | None = None) -> Iterator[None]:
    """A local Ray with ``num_cpus`` CPUs (and ``num_gpus`` logical GPUs, if given), quiet (no dashboard, no
    worker logs at the driver), shut down on leaving; when Ray is already up it is used as it is and left up."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    try:
        yield
    finally:
        if started:
            ray.shutdown()
