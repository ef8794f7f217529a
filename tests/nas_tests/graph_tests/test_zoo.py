"""nas.graph.zoo: the published models in plain PyTorch, their parameter counts at the original input sizes, the
small-input variants and the sequence models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from nas.core.errors import ShapeError
from nas.graph.zoo import alexnet, lenet, recurrent, resnet, vgg

Builder = Callable[[object, tuple[int, ...], int], nn.Module]


def _params(builder: Builder, shape: tuple[int, ...], classes: int) -> int:
    with torch.device("meta"):  # nothing is allocated: the 138M-parameter VGG-16 costs no memory
        model = builder(None, shape, classes)
    return sum(p.numel() for p in model.parameters())


IMAGENET = (3, 224, 224)


# The published counts: torchvision's weight metadata (``num_params`` of AlexNet_Weights, VGG11_Weights,
# VGG16_Weights, ResNet18/34/50_Weights), for its variants of the models (AlexNet's single tower, VGG without BN,
# ResNet-50 v1.5; the stride's place changes no count).
def test_alexnet_has_torchvisions_61100840_parameters() -> None:
    assert _params(alexnet.alexnet, IMAGENET, 1000) == 61_100_840


def test_vgg11_has_132863336_parameters() -> None:
    assert _params(vgg.vgg11, IMAGENET, 1000) == 132_863_336


def test_vgg16_has_138357544_parameters() -> None:
    assert _params(vgg.vgg16, IMAGENET, 1000) == 138_357_544


def test_resnet18_has_11689512_parameters() -> None:
    assert _params(resnet.resnet18, IMAGENET, 1000) == 11_689_512


def test_resnet34_has_21797672_parameters() -> None:
    assert _params(resnet.resnet34, IMAGENET, 1000) == 21_797_672


def test_resnet50_has_25557032_parameters() -> None:
    assert _params(resnet.resnet50, IMAGENET, 1000) == 25_557_032


def test_lenet5_has_61706_parameters_on_32x32() -> None:
    # 6*(25+1) + 16*(6*25+1) + 120*(16*5*5+1) + 84*(120+1) + 10*(84+1): full C3, parameter-free subsampling
    assert _params(lenet.lenet5, (1, 32, 32), 10) == 156 + 2416 + 48120 + 10164 + 850 == 61_706


def test_lenet5_on_28x28_pads_c1_and_keeps_the_classic_count() -> None:
    model = lenet.lenet5(None, (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 61_706
    assert model.features(torch.zeros(1, 1, 28, 28)).shape == (1, 16, 5, 5)


def test_resnet18_small_input_variant_is_the_cifar_form() -> None:
    # 3x3 stride-1 stem, no max-pool: 11,173,962 parameters for 3x32x32 and 10 classes (the common CIFAR ResNet-18)
    assert _params(resnet.resnet18, (3, 32, 32), 10) == 11_173_962
    model = resnet.resnet18(None, (3, 32, 32), 10)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert resnet.ResNet(resnet.BasicBlock, (2, 2, 2, 2), "resnet18", (3, 224, 224), 10, small=True).stem[0].stride \
        == (1, 1)


def test_vgg_small_variant_has_a_single_linear_head() -> None:
    model = vgg.vgg16(None, (3, 32, 32), 10)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.in_features == 512
    # the 13 convolutions of configuration D hold 14,714,688 parameters, the head 512*10 + 10
    assert _params(vgg.vgg16, (3, 32, 32), 10) == 14_714_688 + 5_130


@pytest.mark.parametrize("builder", [lenet.lenet5, alexnet.alexnet, vgg.vgg11, vgg.vgg16, resnet.resnet18,
                                     resnet.resnet34, resnet.resnet50])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_image_models_run_forward_and_backward_on_small_images(builder: Builder, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = builder(None, shape, 10)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("builder,directions", [(recurrent.gru, 1), (recurrent.bigru, 2)])
def test_gru_models_classify_sequences(builder: Builder, directions: int) -> None:
    features, hidden, classes = 4, recurrent.HIDDEN, 5
    model = builder(None, (30, features), classes)
    out = model(torch.randn(3, 30, features))
    assert out.shape == (3, classes)
    first = 3 * (hidden * features + hidden * hidden + 2 * hidden)
    second = 3 * (hidden * hidden * directions + hidden * hidden + 2 * hidden)
    assert sum(p.numel() for p in model.parameters()) == directions * (first + second) \
        + (hidden * directions + 1) * classes


def test_bigru_reads_both_ends_of_the_sequence() -> None:
    torch.manual_seed(0)
    model = recurrent.bigru(None, (12, 3), 2).eval()
    x = torch.randn(1, 12, 3)
    y = x.clone()
    y[0, 0] += 1.0  # the first step reaches the output through the backward direction's final state
    assert not torch.allclose(model(x), model(y))


@pytest.mark.parametrize("builder,shape", [(lenet.lenet5, (30, 4)), (resnet.resnet18, (30, 4)),
                                           (recurrent.gru, (1, 8, 8)), (lenet.lenet5, (1, 2, 2))])
def test_a_wrong_input_shape_names_the_model_and_the_fix(builder: Builder, shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=r"reference '\w+'"):
        builder(None, shape, 10)
