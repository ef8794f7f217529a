"""nas.graph.references: the classic baselines, in the graph format, compiled by the common compiler."""

from __future__ import annotations

import pytest
import torch

from nas import references
from nas.core.errors import UnknownNameError
from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model

NAMES = references.list_references()
CLASSES = 10
# small inputs keep the suite fast: grey 8x8 images, sequences of 30 steps with 4 features
SHAPES = {"image": (1, 8, 8), "sequence": (30, 4)}


def test_the_reference_list() -> None:
    assert NAMES == ["lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "lenet5_bn", "vgg",
                     "resnet20", "gru", "bigru", "lstm", "bilstm", "transformer"]
    assert {references.input_kind(n) for n in NAMES} == {"image", "sequence"}
    assert [n for n in NAMES if references.input_kind(n) == "image"] == NAMES[:10]
    assert [n for n in NAMES if references.reference_kind(n) == "cells"] == ["lenet5_bn", "vgg", "resnet20", "lstm",
                                                                             "bilstm", "transformer"]


@pytest.mark.parametrize("name", [n for n in NAMES if references.reference_kind(n) == "zoo"])
def test_zoo_references_are_builder_architectures_of_the_zoo(name: str) -> None:
    """One name, one model: a zoo entry is the plain-PyTorch model of nas.graph.zoo, with no decisions."""
    arch = references.get(name)
    assert arch.cells == {} and arch.macro["decisions"] == {}
    module, function = arch.macro["builder"].split(":")
    assert module.startswith("nas.graph.zoo.") and function == name


@pytest.mark.parametrize("name", NAMES)
def test_reference_compiles_and_trains(name: str) -> None:
    arch = references.get(name)
    assert isinstance(arch, Architecture) and arch.space == "reference"
    assert arch.validate() is arch
    shape = SHAPES[references.input_kind(name)]
    torch.manual_seed(0)
    model = build_model(arch, shape, CLASSES).train()
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, CLASSES)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_reference_json_round_trip(name: str) -> None:
    arch = references.get(name)
    text = arch.to_json()
    back = Architecture.from_json(text)
    assert back == arch and back.to_json() == text
    assert back.canonical_hash() == arch.canonical_hash()


@pytest.mark.parametrize("name", NAMES)
def test_reference_is_rebuilt_identically(name: str) -> None:
    assert references.get(name) == references.get(name)
    assert references.get(name) is not references.get(name)


def test_references_compute_different_functions() -> None:
    assert len({references.get(n).canonical_hash() for n in NAMES}) == len(NAMES)


def test_resnet20_has_the_size_of_resnet20() -> None:
    """He et al. (2016) report 0.27M parameters for ResNet-20 on CIFAR-10."""
    model = build_model(references.get("resnet20"), (3, 32, 32), 10)
    params = sum(p.numel() for p in model.parameters())
    assert 0.265e6 <= params <= 0.275e6
    assert sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)) == 19


def test_image_references_at_cifar_size() -> None:
    for name in ("lenet5", "lenet5_bn", "vgg", "vgg11", "resnet18"):
        model = build_model(references.get(name), (3, 32, 32), 10)
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_unknown_reference_has_a_close_match_hint() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown reference architecture 'resnet2'.*did you mean 'resnet20'"):
        references.get("resnet2")
    with pytest.raises(UnknownNameError, match=r"did you mean 'lenet5'"):
        references.input_kind("lenet")
    with pytest.raises(UnknownNameError) as info:
        references.get("xyz")
    assert "known: " in str(info.value) and "transformer" in str(info.value) and info.value.hint is None
