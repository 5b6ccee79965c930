"""Small models that several test files share (imported by name: pytest puts tests/ on the path)."""
from collections import OrderedDict

import torch
from torch import nn


def small_model():
    """conv-BN-ReLU(in place)-dropout-conv-ReLU-GAP-fc on 3 channels, 3 classes: every kind of layer
    whose mode or in-place output a method could get wrong."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 4, 3, padding=1), bn1=nn.BatchNorm2d(4), relu1=nn.ReLU(inplace=True),
        drop=nn.Dropout(0.5), conv2=nn.Conv2d(4, 6, 3, padding=1), relu2=nn.ReLU(),
        gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(6, 3)))


def all_hooks(model):
    """How many hooks the model's modules hold (a method must leave none)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


class Functional(nn.Module):
    """ReLU as a function, not a module, and a mean instead of GAP: guided backprop, LRP and CAM
    cannot see them; only the gradient methods apply."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.fc = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.b(self.a(x).relu()).relu().mean(dim=(2, 3)))
