"""The gradient family: saliency, class model visualisation, CAM, Grad-CAM, Grad-CAM++,
guided backpropagation and Guided Grad-CAM.

Notation (one for the whole suite): y^c is the pre-softmax score of class c, A^k is channel k of the
chosen layer's output (h x w, Z = h*w positions), g^k_ij = dy^c/dA^k_ij. Every map comes back raw:
at the layer's resolution, neither upsampled nor normalised (see `minicam.maps`).

Every method takes `target` as an int, one class per image (N,), or T classes per image (N, T); the
last gives the maps of every (image, class) pair, (N, T, ...), from one forward pass and one backward
pass per class (`minicam.hooks.capture`), never T forward passes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .checks import (Layer, NotApplicable, Target, check_feature_maps, check_images, check_model, check_number,
                     check_targets, resolve_layer, whole_number)
from .hooks import capture, forward_acts, hooked, pair_rows, per_image, replaced_outputs
from .maps import upsample

__all__ = ["saliency", "class_model", "cam", "gradcam", "gradcam_pp", "guided_backprop", "guided_gradcam",
           "gradcam_weights", "gradcampp_alphas", "gradcampp_weights", "weighted_sum"]


# ---- the pieces a notebook derives by hand, on plain tensors ---------------------------------

def gradcam_weights(grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM channel weights alpha_k^c = (1/Z) sum_ij dy^c/dA^k_ij (Selvaraju et al., eq. 1).

    grads: (N, K, h, w) -> (N, K).
    """
    return check_feature_maps(grads, "grads", "Grad-CAM").mean(dim=(2, 3))


def gradcampp_alphas(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ pixel weights, eq. 19 of Chattopadhyay et al. (Y^c = exp(S^c), ReLU network):

        alpha^kc_ij = g_ij^2 / (2 g_ij^2 + (sum_ab A^k_ab) g_ij^3)

    with g = dS^c/dA. The cube is taken at (i, j), outside the sum over (a, b). alpha is 0 where the
    denominator is 0 (where g = 0, and where 2 + sum(A) g = 0): never a division by zero. Computed in at
    least float32 and returned in the dtype of grads: in float16, g^3 underflows and the sum of A overflows.
    acts, grads: (N, K, h, w) -> (N, K, h, w).
    """
    if check_feature_maps(acts, "acts", "Grad-CAM++").shape != check_feature_maps(grads, "grads", "Grad-CAM++").shape:
        raise ValueError(f"grads must be dy/dA, of the shape of acts {tuple(acts.shape)}, got {tuple(grads.shape)}")
    a, g = (t.to(torch.promote_types(t.dtype, torch.float32)) for t in (acts, grads))
    g2 = g.pow(2)
    denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g.pow(3)
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    return torch.where(denom != 0, g2 / safe, torch.zeros_like(denom)).to(grads.dtype)


def gradcampp_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights w_k^c = sum_ij alpha^kc_ij relu(g_ij) (eq. 5 with eq. 19's alpha; arXiv 1710.11063v3).

    The paper's relu(dY/dA) with Y = exp(S) is exp(S) relu(g): one positive factor per image, which
    leaves the normalised map unchanged, so it is left out. acts, grads: (N, K, h, w) -> (N, K).
    """
    return (gradcampp_alphas(acts, grads) * grads.clamp(min=0)).sum(dim=(2, 3))


def weighted_sum(weights: torch.Tensor, acts: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """The map sum_k w_k A^k, with a ReLU unless relu=False. weights (N, K), acts (N, K, h, w) -> (N, h, w)."""
    check_feature_maps(acts, "acts", "weighted_sum (sum_k w_k A^k)")
    if not isinstance(weights, torch.Tensor) or weights.shape != acts.shape[:2]:
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights {got} must be (N, K) for acts {tuple(acts.shape)}")
    maps = torch.einsum("nk,nkhw->nhw", weights, acts)
    return maps.clamp(min=0) if relu else maps


# ---- the methods ---------------------------------------------------------------------------

def saliency(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Image-specific saliency (Simonyan, Vedaldi, Zisserman 2014, arXiv 1312.6034v2, sec. 3, eqs. 2-4; the map of sec. 3.1): w = dS_c/dI, and
    M_ij = max over colour channels of |w_ij|. x: (N, C, H, W) -> (N, H, W), or (N, T, H, W) for T classes
    per image."""
    return per_image(capture(model, x, target).grads.abs().amax(dim=1), target)


def class_model(model: nn.Module, target: int, shape, steps: int = 200, lr: float = 1.0,
                l2: float = 0.01) -> torch.Tensor:
    """Class model visualisation (Simonyan et al. 2014, sec. 2, eq. 1): gradient ascent on
    S_c(I) - l2 ||I||_2^2, the unnormalised score, from the zero image: I <- I + lr * (dS_c/dI - 2 l2 I).

    shape: (C, H, W) of the image. The paper publishes no l2 and adds the training mean afterwards;
    that is left to the caller. Returns the image (C, H, W), in the model's dtype and on its device.
    """
    model = check_model(model)
    if isinstance(shape, (str, torch.Tensor)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {shape!r}")
    shape = tuple(whole_number(side, f"shape[{i}]", 1, floats=False) for i, side in enumerate(shape))
    steps = whole_number(steps, "steps", 0, floats=False, want="a non-negative int")
    lr = check_number(lr, "lr", "a finite number > 0", lambda v: 0 < v < math.inf)
    l2 = check_number(l2, "l2", "a finite number >= 0", lambda v: 0 <= v < math.inf)
    like = next((t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()), None)
    image = torch.zeros((1, *shape), dtype=torch.get_default_dtype() if like is None else like.dtype,
                        device=None if like is None else like.device)
    for _ in range(steps):  # capture refuses scores that do not reach the image: the ascent would only shrink it
        image = image + lr * (capture(model, image, target).grads - 2 * l2 * image)
    if steps == 0:  # still check the target against the model
        capture(model, image, target)
    return image[0].detach()


def _gap_fc(model: nn.Module, layer: str, scores: torch.Tensor, acts: torch.Tensor, fc: Layer | None) -> nn.Linear:
    """The linear layer CAM takes its weights from (default: the model's last nn.Linear), once CAM's
    condition holds as the identity it is (Zhou et al. 2016, eq. 1): A is (N, K, h, w) and the class scores
    are one linear layer of its global average pool, S_c = sum_k w^c_k (1/Z) sum_xy f_k(x, y) + b_c, i.e.
    scores ~= fc(GAP(A)), to the precision of the numbers themselves. NotApplicable otherwise."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if fc is None and not linears:
        raise NotApplicable("CAM needs the model to end in global average pooling and an nn.Linear; this "
                            "model has no nn.Linear. Leave CAM out (Grad-CAM needs no GAP)")
    fc_name, fc = resolve_layer(model, linears[-1] if fc is None else fc)
    if not isinstance(fc, nn.Linear) or fc.out_features != scores.shape[1]:
        raise NotApplicable(f"CAM needs fc to be the model's last layer, the nn.Linear that gives the class scores "
                            f"after global average pooling; {fc_name!r} is {type(fc).__name__} with another output. "
                            "Pass that linear layer, or use gradcam")
    pooled = check_feature_maps(acts, layer, "CAM").mean(dim=(2, 3))
    predicted = None if pooled.shape[1] != fc.in_features else F.linear(pooled, fc.weight.detach(), None if
                                                                         fc.bias is None else fc.bias.detach())
    scale = 0.0 if predicted is None else max(scores.abs().max().item(), predicted.abs().max().item())
    if predicted is None or not torch.allclose(predicted, scores, rtol=1e-4, atol=1e-5 * scale):
        raise NotApplicable(f"CAM needs conv -> global average pooling -> one linear layer: the input of "
                            f"{fc_name!r} is not the spatial mean of {layer!r}'s output. "
                            "Choose the last conv block's output as layer, or use gradcam, which needs no GAP")
    return fc


def cam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer, fc: Layer | None = None) -> torch.Tensor:
    """Class activation map (Zhou et al. 2016, eq. 2): M_c(x, y) = sum_k w^c_k f_k(x, y), with w the
    weights of the linear layer `fc` (default: the model's last nn.Linear) after global average
    pooling of `layer`: fc's weight row of each image's class (the bias shifts every position alike and
    is left out). Raises NotApplicable (a ValueError) unless scores = fc(GAP(A)). -> (N, h, w), or
    (N, T, h, w) for a target of T classes per image (N, T).
    """
    model = check_model(model)
    scores, (acts,) = forward_acts(model, x, [layer])
    fc = _gap_fc(model, resolve_layer(model, layer)[0], scores, acts, fc)
    targets = check_targets(target, len(acts), scores.shape[1], several=True)
    weights = fc.weight.detach()[targets.flatten()]
    return per_image(weighted_sum(weights, pair_rows(acts, targets), relu=False), target)


def gradcam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer,
            counterfactual: bool = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., eqs. 1-2): L^c = ReLU(sum_k alpha^c_k A^k), alpha = GAP of dy^c/dA.
    counterfactual=True uses -dy^c/dA (arXiv 1610.02391v4, sec. 3.3, eq. 12): regions whose removal would
    raise y^c. -> (N, h, w), or (N, T, h, w) for T classes per image."""
    if not isinstance(counterfactual, bool):
        raise TypeError(f"counterfactual must be True (use -dy/dA) or False, got {counterfactual!r}")
    cap = capture(model, x, target, layer)
    acts = check_feature_maps(cap.acts, cap.layer, "Grad-CAM")
    alpha = (-cap.grads if counterfactual else cap.grads).mean(dim=(2, 3))          # eq. 1 (eq. 12)
    return per_image(torch.einsum("nk,nkhw->nhw", alpha, acts).clamp(min=0), target)  # eq. 2


def gradcam_pp(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhyay et al. 2018, arXiv 1710.11063v3, eq. 20): L^c = ReLU(sum_k w^c_k A^k) with eq. 19's alphas,
    computed exactly from one backward pass. -> (N, h, w), or (N, T, h, w) for T classes per image (N, T)."""
    cap = capture(model, x, target, layer)
    acts = check_feature_maps(cap.acts, cap.layer, "Grad-CAM++")
    return per_image(weighted_sum(gradcampp_weights(acts, cap.grads), acts), target)


class _PositiveGrad(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _Rectifiers(TorchFunctionMode):
    """Records the rectifying functions a forward pass calls (F.relu, torch.relu, F.hardswish, ...): each
    nn.ReLU module calls F.relu once, so any more are rectifiers guided backprop would leave unguided."""
    FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu6,
                 F.hardswish, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish, F.hardtanh}

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.FUNCTIONS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): at every ReLU the backward signal is
    relu(grad_out) * 1[input > 0], both the forward and the backward sign masks. Acts on the
    model's nn.ReLU modules; a model that also rectifies otherwise (a functional relu, Hardswish, GELU)
    is refused with NotApplicable, as its guidance would be partial. x: (N, C, H, W) -> dy^c/dx under
    that rule, (N, C, H, W) ((N, T, C, H, W) for T classes per image)."""
    relus = [m for m in check_model(model).modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise NotApplicable("guided backprop changes the backward pass of nn.ReLU modules, and the model "
                            "has none (a functional relu cannot be hooked); use nn.ReLU modules")
    runs = []
    # The ReLU's own backward multiplies by 1[input > 0]; _PositiveGrad adds relu() on the incoming grad.
    with replaced_outputs(relus, _PositiveGrad.apply), hooked([(m, lambda *_: runs.append(1)) for m in relus]), \
            _Rectifiers() as seen:
        grads = capture(model, x, target).grads
    if len(seen.calls) > len(runs):
        others = sorted(set(seen.calls) - {"relu"}) or ["relu as a function"]
        raise NotApplicable(f"guided backprop guides the model's nn.ReLU modules, but its forward pass also calls "
                            f"{', '.join(others)} outside them ({len(seen.calls) - len(runs)} time(s)), whose backward "
                            "pass would stay unguided; use nn.ReLU modules for every rectifier, or use saliency")
    return per_image(grads, target)


def guided_gradcam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al., sec. 3.2): guided backprop times the Grad-CAM map
    upsampled bilinearly to the image, element-wise. -> (N, C, H, W), or (N, T, C, H, W) for T classes per image."""
    x = check_images(x)
    cams = gradcam(model, x, target, layer)
    maps = upsample(cams.flatten(0, -3), x.shape[-2:]).unflatten(0, cams.shape[:-2])
    return guided_backprop(model, x, target) * maps.unsqueeze(-3)
