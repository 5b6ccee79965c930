"""Every map method of the suite in one table: `METHODS[name]` is a `Method`, called as
`method(model, x, target, layer)` -> the raw map, as the method's own minicam function returns it.

A method says what it needs (`needs_layer`: a layer to explain, else it explains the input pixels) and
says that it does not apply by raising `NotApplicable` (a ValueError) when called: whether CAM applies
at a layer, or LRP to a model, is the method's to decide, and callers let the error through. The CAM family
(CAM, Grad-CAM, its counterfactual, Grad-CAM++) is its channel weights w^c_k on one `Capture`:
`method.from_capture(model, layer, cap, targets)` is sum_k w^c_k A^k without another pass.

Every method takes a target of T classes per image, (N, T), and returns (N, T, ...): the maps of every
(image, class) pair from one forward pass (and one backward pass, or LRP walk, per class).

The explorer, the evaluation and the tests take their methods from here: a new method is one entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .checks import Layer, Target, check_targets
from .gradients import (_gap_fc, cam, gradcam, gradcam_pp, gradcam_weights, gradcampp_weights, guided_backprop,
                        guided_gradcam, saliency, weighted_sum)
from .hooks import Capture, per_image
from .lrp import lrp, relevance_cam

__all__ = ["METHODS", "Method", "CAM_FAMILY"]


@dataclass(frozen=True)
class Method:
    """One map method. compute(model, x (N, C, H, W), target, layer) -> raw map: (N, h, w) at the
    layer's resolution for layer methods (Guided Grad-CAM: (N, C, H, W)), (N, H, W) or (N, C, H, W)
    at the input for the others, which ignore `layer`; with a target of T classes per image (N, T),
    (N, T, ...) from one forward pass. weights(model, layer, cap, targets) -> (N, K):
    the CAM family's channel weights, None for the rest; relu: whether the weighted sum is rectified.
    explorer: offered by the explorer unless its `methods` says otherwise."""
    name: str
    compute: Callable[[nn.Module, torch.Tensor, Target, Layer | None], torch.Tensor]
    needs_layer: bool = True
    weights: Callable | None = None
    relu: bool = True
    explorer: bool = True

    def __call__(self, model: nn.Module, x: torch.Tensor, target: Target, layer: Layer | None = None):
        return self.compute(model, x, target, layer)

    def from_capture(self, model: nn.Module, layer: str, cap: Capture, targets: torch.Tensor) -> torch.Tensor:
        """The map sum_k w^c_k A^k from the Capture `capture(model, x, targets, layer)` returned, without another
        pass: (N,) targets -> (N, h, w); (N, T), T classes per image, -> (N, T, h, w). targets must be the
        capture's: its gradients are of those classes."""
        if self.weights is None or not isinstance(cap, Capture) or cap.targets is None:
            raise TypeError(f"cap must be the Capture that capture(model, x, target, layer) returns, for a method of "
                            f"the CAM family ({', '.join(CAM_FAMILY)}); got {type(cap).__name__} for {self.name!r}"
                            f"{'' if self.weights else ', which is not of the CAM family'}: call "
                            f"METHODS[{self.name!r}](model, x, target, layer) instead")
        per = targets.shape[1] if getattr(targets, "ndim", 0) == 2 else 1  # classes per image
        pairs = check_targets(targets, len(cap.targets) // per, cap.scores.shape[1], several=True)
        if not torch.equal(pairs.flatten().to(cap.targets.device), cap.targets):
            raise ValueError(f"targets {pairs.tolist()} are not the classes the capture was taken for, "
                             f"{cap.targets.tolist()}; pass the capture's own targets, or capture these")
        return per_image(weighted_sum(self.weights(model, layer, cap, pairs.flatten()), cap.acts, relu=self.relu),
                         targets)


def _cam_weights(model, layer, cap, targets):
    return _gap_fc(model, layer, cap.scores, cap.acts, None).weight.detach()[targets]


_TABLE = [
    Method("Grad-CAM", gradcam, weights=lambda model, layer, cap, targets: gradcam_weights(cap.grads)),
    Method("Grad-CAM (counterfactual)", lambda model, x, target, layer: gradcam(model, x, target, layer, True),
           weights=lambda model, layer, cap, targets: gradcam_weights(-cap.grads)),
    Method("Grad-CAM++", gradcam_pp, weights=lambda model, layer, cap, targets: gradcampp_weights(cap.acts, cap.grads)),
    Method("CAM", cam, weights=_cam_weights, relu=False),
    Method("Guided Grad-CAM", guided_gradcam),
    Method("Relevance-CAM", relevance_cam),
    Method("saliency", lambda model, x, target, layer=None: saliency(model, x, target), needs_layer=False),
    Method("guided backprop", lambda model, x, target, layer=None: guided_backprop(model, x, target),
           needs_layer=False),
    Method("LRP", lambda model, x, target, layer=None: lrp(model, x, target), needs_layer=False, explorer=False),
]
METHODS: dict[str, Method] = {method.name: method for method in _TABLE}
CAM_FAMILY = tuple(name for name, method in METHODS.items() if method.weights is not None)
