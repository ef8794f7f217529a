"""Shared test setup: one intra-op thread and a fixed torch seed for every test.

The models under test are tiny; on small CI machines torch's thread pool costs far more than it saves
(a 2x1x8x8 ResNet-20 forward pass takes ~1 s with 2 threads and a few ms with 1).
"""

from __future__ import annotations

import functools
import json
import tempfile
from typing import Any

import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests, with the reason, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu test: no CUDA device is visible here (torch.cuda.is_available() is False); "
                                   "it runs on a machine with a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same torch seed and one thread (a test may change either)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)


@functools.cache
def search_outcome(algorithm: str, space_name: str, space_options: str = "{}") -> Any:
    """A real, short supernet search (one epoch of the proxy nb201 C=2 N=1 or the given space, on 200
    digits), run once per algorithm and space: the outcome a one-shot strategy needs before its first ask,
    for tests that drive strategies without an Experiment (which would run the search itself)."""
    from nas.oneshot.config import OneShotConfig
    from nas.oneshot.job import run_supernet_search
    from nas.oneshot.spec import SupernetSearch
    from search_spaces import get_space

    space = get_space(space_name, **json.loads(space_options))
    small = {"C": 2, "N": 1} if space_name == "nb201" else {}
    config = OneShotConfig.from_options(algorithm, {"epochs": 1, "batch_size": 32, "space_options": small})
    with tempfile.TemporaryDirectory() as tmp:
        search = SupernetSearch(space=space, task="digits", task_options={"limit": 200}, seed=0, config=config,
                                directory=tmp)
        return run_supernet_search(search)


def ready(strategy: Any) -> Any:
    """``strategy``, with its supernet search done first when it is a one-shot strategy."""
    inner = getattr(strategy, "inner", strategy)
    if getattr(inner, "one_shot", False) and inner.outcome is None:
        space = inner.space
        inner.tell_job(search_outcome(inner.algorithm, space.name, json.dumps(space.options(), sort_keys=True)))
    return strategy
