"""NAS-Bench-201 space against the real benchmark table shipped in the package (nas/benchmarks)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from nas.core.errors import InvalidArchitectureError
from nas.evaluation.benchmarks import load_nb201
from search_spaces import get_space

SPACE = get_space("nb201")
RECORDS = load_nb201()


@pytest.fixture(scope="module")
def archs():
    return [SPACE.from_string(r.arch_str) for r in RECORDS]


@pytest.fixture(scope="module")
def hashes(archs):
    return [a.canonical_hash() for a in archs]


def test_table_and_space_sizes():
    assert len(RECORDS) == SPACE.size() == 15625
    assert len({r.arch_str for r in RECORDS}) == 15625
    assert {SPACE.to_string(a) for a in SPACE.enumerate()} == {r.arch_str for r in RECORDS}


def test_every_string_parses_and_prints_back_identically(archs):
    for record, arch in zip(RECORDS, archs):
        assert SPACE.to_string(arch) == record.arch_str
        assert SPACE.contains(arch)


def test_the_issue_example_string():
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    arch = SPACE.from_string(text)
    assert SPACE.to_string(arch) == text
    assert dict(((s, d), op) for s, d, op in arch.cell("cell").edges)[(1, 2)] == "avg_pool_3x3"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3"),
        ("|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op"),
        ("|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "should be 'op~0'"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "has 1 edges"),
        ("nor_conv_3x3~0+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "|op~0|"),
    ],
)
def test_malformed_strings_are_rejected_with_the_reason(text, fragment):
    with pytest.raises(InvalidArchitectureError, match="NB201 string") as err:
        SPACE.from_string(text)
    assert fragment in str(err.value)


def _params(arch) -> int:
    model = SPACE.build_model(arch, (3, 32, 32), 10)
    return sum(p.numel() for p in model.parameters())


def _check_params(records) -> None:
    for record in records:
        count = _params(SPACE.from_string(record.arch_str))
        assert abs(count / 1e6 - record.params_M) <= 1e-3 * record.params_M, (record.arch_str, count)


def test_parameter_counts_match_the_benchmark_on_150_rows():
    # 150 random cells hold every op on every edge about 30 times; every row: the slow test below
    rows = [r for r in RECORDS if r.params_M is not None]
    picked = np.random.default_rng(201).choice(len(rows), size=150, replace=False)
    _check_params([rows[i] for i in picked])


def test_parameter_count_of_arch_0_is_exact():
    # checked by hand against the NAS-Bench-201 network definition: 129,306 parameters
    assert _params(SPACE.from_string(RECORDS[0].arch_str)) == 129306


@pytest.mark.slow
def test_parameter_counts_match_the_benchmark_on_every_row():
    _check_params([r for r in RECORDS if r.params_M is not None])


def test_hash_never_separates_cells_the_benchmark_calls_identical(hashes):
    by_unique: dict[str, set[str]] = defaultdict(set)
    for record, h in zip(RECORDS, hashes):
        by_unique[record.unique_str].add(h)
    assert len(by_unique) == 6466
    assert all(len(group) == 1 for group in by_unique.values())


def _fingerprint(arch, weights, x) -> tuple[float, ...]:
    """Evaluate the cell under NB201's algebra with random nonlinear ops: none = 0, skip = identity,
    every other op f(v) = tanh(W_op v) (so f(0) = 0), nodes sum their inputs. Cells that compute the same
    expression give the same vector; different expressions differ with probability 1."""
    cell = arch.cell("cell")
    values = {0: x}
    for node in (1, 2, 3):
        acc = np.zeros_like(x)
        for src, op in cell.in_edges(node):
            if op == "none":
                continue
            acc = acc + (values[src] if op == "skip_connect" else np.tanh(weights[op] @ values[src]))
        values[node] = acc
    return tuple(np.round(values[3], 6))


def test_hash_classes_are_exactly_the_cells_computing_the_same_expression(archs, hashes):
    rng = np.random.default_rng(0)
    weights = {op: rng.normal(size=(4, 4)) for op in SPACE.ops}
    x = rng.normal(size=4)
    fingerprints = [_fingerprint(a, weights, x) for a in archs]
    pairs = set(zip(hashes, fingerprints))
    # a bijection between hash classes and expression classes: equal iff same expression
    assert len(pairs) == len(set(hashes)) == len(set(fingerprints))
    # 4,930 classes, fewer than NAS-Bench-201's 6,466 unique strings (which miss some equivalences)
    assert len(set(hashes)) == 4930


def test_hash_merges_an_equivalence_the_unique_strings_miss():
    # node 2 sums two zero inputs, so any op applied to it contributes nothing: both cells compute x.
    # NAS-Bench-201's unique string only treats a node as zero when it has a single zero input.
    a = SPACE.from_string("|none~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    b = SPACE.from_string("|none~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    unique = {r.arch_str: r.unique_str for r in RECORDS}
    assert unique[SPACE.to_string(a)] != unique[SPACE.to_string(b)]
    assert a.canonical_hash() == b.canonical_hash()
