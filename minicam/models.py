"""Small CNNs for the shapes world, and their shipped weights.

Both models output one logit per class (no sigmoid inside): the task is
multi-label, trained with BCEWithLogitsLoss, so class k is "present" when
sigmoid(logit_k) > 0.5, i.e. logit_k > 0.

- ShapesVGG: a flat nn.Sequential with readable names
  conv1 relu1 pool1 conv2 relu2 conv3 relu3 pool2 conv4 relu4 ... gap flatten fc.
  The map after the last ReLU is 16x16 on 64x64 input, and since only global
  average pooling sits between it and ``fc``, CAM applies exactly.
- ShapesResNet: a genuine torchvision ResNet (BasicBlock, [1, 1, 1, 1]) made
  small; ``layer4`` gives an 8x8 map on 64x64 input.

PRETRAINED are the models the notebooks explain. CONTROLS ship beside them for one purpose: the
data-randomisation test of Adebayo et al. (NeurIPS 2018), a ShapesVGG trained exactly as
``shapes_vgg`` but on labels permuted across the images, so it has nothing to learn but how often
each class occurs. SHIPPED is both.
"""
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from .checks import whole_number
from .lrp import fold_bn

__all__ = ["ShapesVGG", "ShapesResNet", "shapes_resnet", "PRETRAINED", "CONTROLS", "SHIPPED", "WEIGHTS_DIR",
           "create_model", "weights_path", "load_pretrained", "fold_batchnorm"]

PRETRAINED = ("shapes_vgg", "shapes_resnet", "shapes_vgg_biased")
CONTROLS = ("shapes_vgg_shuffled",)
SHIPPED = PRETRAINED + CONTROLS
WEIGHTS_DIR = Path(__file__).parent / "weights"


class ShapesVGG(nn.Sequential):
    """VGG-style CNN: 3x3 conv + ReLU blocks, max-pools after conv1 and conv3,
    then global average pooling and one linear layer.

    Input (N, 3, H, W) -> logits (N, num_classes). With the default widths the
    last conv map (conv6/relu6) is (N, 64, H/4, W/4).
    batchnorm=True puts a BatchNorm2d "bn<i>" after each conv; it is only used
    for training, see fold_batchnorm.
    """

    def __init__(self, num_classes=4, widths=(16, 32, 32, 64, 64, 64), batchnorm=False):
        num_classes = _num_classes(num_classes)
        if isinstance(widths, (str, torch.Tensor)) or not isinstance(widths, (list, tuple)):
            raise TypeError(f"widths must be a list or tuple of at least 5 channel counts, got {widths!r}")
        if len(widths) < 5:
            raise ValueError(f"ShapesVGG needs at least 5 conv widths, got {len(widths)}: {widths}")
        widths = [whole_number(w, f"widths[{i}]", 1, floats=False, want="a positive integer (channels)")
                  for i, w in enumerate(widths)]
        layers, c_in = OrderedDict(), 3
        for i, c_out in enumerate(widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, 3, padding=1)
            if batchnorm:
                layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{i}"] = nn.ReLU()
            if i in (1, 3):  # pool early: the net stays fast while the last map is H/4
                layers[f"pool{1 if i == 1 else 2}"] = nn.MaxPool2d(2)
            c_in = c_out
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(c_in, num_classes)
        super().__init__(layers)
        for m in self.modules():  # as torchvision's VGG does
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def _num_classes(num_classes) -> int:
    return whole_number(num_classes, "num_classes", 1, floats=False, want="a positive integer (one logit per class)")


@torch.no_grad()
def fold_batchnorm(model):
    """A plain ShapesVGG (conv/ReLU only) that computes what ``model``, a ShapesVGG
    with batchnorm=True, computes in eval mode (each BN folded by `fold_bn`).
    Training with BN is much faster; explaining a plain conv/ReLU stack is simpler.
    """
    convs = [m for m in model if isinstance(m, nn.Conv2d)] if isinstance(model, ShapesVGG) else []
    if not convs or any(not hasattr(model, f"bn{i}") for i in range(1, len(convs) + 1)):
        raise ValueError(f"model must be a ShapesVGG built with batchnorm=True, got {type(model).__name__}"
                         + (" without BatchNorm layers" if convs else ""))
    plain = ShapesVGG(model.fc.out_features, [c.out_channels for c in convs])
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("bn")}
    for i, conv in enumerate(convs, start=1):
        state[f"conv{i}.weight"], state[f"conv{i}.bias"] = fold_bn(conv.weight, conv.bias, getattr(model, f"bn{i}"))
    plain.load_state_dict(state)
    return plain.eval()


class ShapesResNet(ResNet):
    """A torchvision ResNet shrunk for 64x64 images: BasicBlock x [1, 1, 1, 1],
    widths (16, 32, 64, 128), 3x3 stride-1 stem and no stem max-pool.

    Input (N, 3, H, W) -> logits (N, num_classes); layer4 is (N, 128, H/8, W/8).
    forward() is torchvision's own.
    """

    def __init__(self, num_classes=4):
        num_classes = _num_classes(num_classes)
        # ResNet.__init__ hard-codes the ImageNet stem and widths, so we build
        # the same attributes ourselves and reuse its _make_layer.
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = 16, 1, 1, 64
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, 16, 1)
        self.layer2 = self._make_layer(BasicBlock, 32, 1, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 64, 1, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 128, 1, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(128 * BasicBlock.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def shapes_resnet(num_classes=4):
    """A fresh (untrained) ShapesResNet."""
    return ShapesResNet(num_classes)


_ARCHS = {"shapes_vgg": ShapesVGG, "shapes_resnet": shapes_resnet, "shapes_vgg_biased": ShapesVGG,
          "shapes_vgg_shuffled": ShapesVGG}


def _check_name(name):
    if not isinstance(name, str) or name not in SHIPPED:
        raise ValueError(f"unknown model {name!r}: name must be one of the shipped models {SHIPPED}")


def create_model(name):
    """A freshly initialised (untrained) model of the architecture behind ``name``."""
    _check_name(name)
    return _ARCHS[name]()


def weights_path(name):
    """Path of the shipped state_dict for ``name``: minicam/weights/<name>.pt."""
    _check_name(name)
    return WEIGHTS_DIR / f"{name}.pt"


def load_pretrained(name):
    """One of the shipped models (see SHIPPED: PRETRAINED and CONTROLS), in eval mode, from package data.

    Nothing is downloaded: the weights live in minicam/weights/.
    """
    path = weights_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild it with `python -m minicam train {name}`")
    model = create_model(name)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
