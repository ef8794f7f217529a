"""The model zoo: published reference models in plain PyTorch (torch only, no torchvision).

Each model has a builder of the ``python`` space's form, ``build(c, input_shape, num_classes) -> nn.Module``, that
asks no decisions (``c`` is unused), so a reference is a builder architecture with ``decisions: {}`` and takes the
same path as a user's define-by-run model (see :mod:`nas.graph.references` for the names and
:mod:`nas.graph.builder`). The classes take the variant explicitly (``small=True``) where the builder chooses it.

========= ============================ =========================================================================
module    builders                     variant matched (parameters at the original input)
========= ============================ =========================================================================
lenet     ``lenet5``                   classic LeNet-5, full C3 table, avg-pool subsampling (61,706 at 1x32x32)
alexnet   ``alexnet``                  torchvision's single-tower AlexNet (61,100,840 at 3x224x224)
vgg       ``vgg11``, ``vgg16``         configurations A / D without BN (132,863,336 / 138,357,544)
resnet    ``resnet18/34/50``           torchvision's ResNet, v1.5 bottleneck (11,689,512 / 21,797,672 / 25,557,032)
recurrent ``gru``, ``bigru``           two-layer (bidirectional) GRU, 128 units, classifier on the final state
========= ============================ =========================================================================

Small inputs: images whose shorter side is below 64 (:data:`SMALL_SIDE`; 8x8 digits, 28x28 MNIST, 32x32 CIFAR)
get each model's small-input variant: AlexNet and ResNet a 3x3 stride-1 stem without the stem max-pool, AlexNet
and VGG their 2x2 max-pools only while the map is at least 2x2 and a global-average-pooled head; LeNet-5 pads its
convolutions instead (see :mod:`nas.graph.zoo.lenet`). Sequence models take ``(T, F)`` input shapes.
"""

from nas.graph.zoo._shapes import SMALL_SIDE

__all__ = ["SMALL_SIDE"]
