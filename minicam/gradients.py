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
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .checks import (Layer, NotApplicable, Target, check_feature_maps, check_images, check_model, check_scores,
                     check_targets, layer_subject, preserved, resolve_layer, whole_number)
from .hooks import Capture, capture, forward_acts, pair_rows, per_image, replaced_outputs, score_grad, score_sum
from .maps import upsample


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
    denominator is 0 (where g = 0, and where 2 + sum(A) g = 0): never a division by zero.
    acts, grads: (N, K, h, w) -> (N, K, h, w).
    """
    _check_acts_grads(acts, grads, "Grad-CAM++")
    g2 = grads.pow(2)
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * grads.pow(3)
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    return torch.where(denom != 0, g2 / safe, torch.zeros_like(denom))


def _check_acts_grads(acts, grads, method: str) -> None:
    check_feature_maps(acts, "acts", method)
    if check_feature_maps(grads, "grads", method).shape != acts.shape:
        raise ValueError(f"grads must be dy/dA, of the shape of acts {tuple(acts.shape)}, got {tuple(grads.shape)}")


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
    S_c(I) - l2 ||I||_2^2, the unnormalised score, from the zero image: I <- I + lr * d/dI(...).

    shape: (C, H, W) of the image. The paper publishes no l2 and adds the training mean afterwards;
    that is left to the caller. Returns the image (C, H, W), in the model's dtype and on its device.
    """
    shape, steps = _check_ascent(shape, steps, lr, l2)
    like = next((t for t in (*check_model(model).parameters(), *model.buffers()) if t.is_floating_point()), None)
    with preserved(model), torch.enable_grad():
        image = torch.zeros((1, *shape), dtype=torch.get_default_dtype() if like is None else like.dtype,
                            device=None if like is None else like.device)
        for step in range(steps):
            image.requires_grad_(True)
            scores = check_scores(model(image))
            targets = check_targets(target, 1, scores.shape[1])
            if step == 0:  # the scores must reach the image through autograd, or the ascent only shrinks it
                score_grad(scores, targets, image, "the image", retain_graph=True)
            objective = score_sum(scores, targets) - l2 * image.pow(2).sum()
            (grad,) = torch.autograd.grad(objective, image)
            image = (image + lr * grad).detach()
        if steps == 0:  # still check the target against the model
            with torch.no_grad():
                check_targets(target, 1, check_scores(model(image)).shape[1])
    return image[0].detach()


def _check_ascent(shape, steps, lr, l2) -> tuple[tuple, int]:
    """class_model's shape (C, H, W) and steps as ints, once lr > 0 and l2 >= 0 are finite numbers."""
    if isinstance(shape, (str, torch.Tensor)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {shape!r}")
    shape = tuple(whole_number(side, f"shape[{i}]", 1, floats=False) for i, side in enumerate(shape))
    steps = whole_number(steps, "steps", 0, floats=False, want="a non-negative int")
    for name, value, low in (("lr", lr, "> 0"), ("l2", l2, ">= 0")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number {low}, got {type(value).__name__}")
        if not math.isfinite(value) or (value <= 0 if name == "lr" else value < 0):
            raise ValueError(f"{name} must be a finite number {low}, got {value!r}")
    return shape, steps


def last_linear(model: nn.Module) -> str:
    """The name of the model's last nn.Linear: CAM's fc unless one is named."""
    names = [name for name, m in check_model(model).named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise NotApplicable("CAM needs the model to end in global average pooling and an nn.Linear; this "
                            "model has no nn.Linear. Leave CAM out (Grad-CAM needs no GAP)")
    return names[-1]


def check_gap_fc(scores: torch.Tensor, pooled: torch.Tensor, fc: nn.Linear, layer_name: str, fc_name: str):
    """CAM's condition as the identity it is (Zhou et al. 2016, eq. 1): the class scores are one
    linear layer of the global average pool of A, S_c = sum_k w^c_k (1/Z) sum_xy f_k(x, y) + b_c,
    i.e. scores ~= fc(GAP(A)). pooled: GAP(A), (N, K); scores: (N, C). Raises NotApplicable if not."""
    if fc.out_features != scores.shape[1]:
        raise NotApplicable(f"CAM needs fc to be the model's last layer: the output of {fc_name!r} is not the "
                            "model's class scores. Pass the linear layer that produces them, or use gradcam")
    tolerance = 1e-5 * max(1.0, scores.abs().max().item())
    if pooled.shape[1] != fc.in_features or not torch.allclose(
            F.linear(pooled, fc.weight.detach(), None if fc.bias is None else fc.bias.detach()), scores,
            rtol=1e-4, atol=tolerance):
        raise NotApplicable(f"CAM needs conv -> global average pooling -> one linear layer: the input of "
                            f"{fc_name!r} is not the spatial mean of {layer_name!r}'s output. "
                            "Choose the last conv block's output as layer, or use gradcam, which needs no GAP")


def cam_weights(fc: nn.Linear, targets: torch.Tensor) -> torch.Tensor:
    """CAM's channel weights w^c_k (Zhou et al. 2016, eq. 2): fc's weight row of each image's class,
    (N, K); the bias shifts every position alike and is left out. targets: (N,) class indices."""
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"fc must be the nn.Linear after global average pooling, got {type(fc).__name__}")
    if not (isinstance(targets, (list, tuple)) or getattr(targets, "ndim", None) == 1):
        raise ValueError(f"targets must hold one class index per image (a 1-D tensor or a list), got {targets!r:.60}")
    return fc.weight.detach()[check_targets(targets, len(targets), fc.out_features)]


def cam_fc(model: nn.Module, layer_name: str, scores: torch.Tensor, acts: torch.Tensor,
           fc: Layer | None = None) -> nn.Linear:
    """The linear layer CAM takes its weights from (default: the model's last nn.Linear), once it is
    checked that CAM applies at the layer: A is (N, K, h, w) and scores = fc(GAP(A))."""
    fc_name, fc_module = resolve_layer(model, last_linear(model) if fc is None else fc)
    if not isinstance(fc_module, nn.Linear):
        raise NotApplicable(f"CAM needs fc to be the nn.Linear after global average pooling; "
                            f"{fc_name!r} is {fc_module.__class__.__name__}")
    check_feature_maps(acts, layer_subject(layer_name), "CAM")
    check_gap_fc(scores, acts.mean(dim=(2, 3)), fc_module, layer_name, fc_name)
    return fc_module


def cam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer, fc: Layer | None = None) -> torch.Tensor:
    """Class activation map (Zhou et al. 2016, eq. 2): M_c(x, y) = sum_k w^c_k f_k(x, y), with w the
    weights of the linear layer `fc` (default: the model's last nn.Linear) after global average
    pooling of `layer`. Raises NotApplicable (a ValueError) unless scores = fc(GAP(A)). -> (N, h, w),
    or (N, T, h, w) for a target of T classes per image (N, T).
    """
    x = check_images(x)
    layer_name, _ = resolve_layer(model, layer)
    scores, (acts,) = forward_acts(model, x, [layer])
    fc_module = cam_fc(model, layer_name, scores, acts, fc)
    targets = check_targets(target, len(x), scores.shape[1], several=True)
    return per_image(weighted_sum(cam_weights(fc_module, targets.flatten()), pair_rows(acts, targets), relu=False),
                     target)


def _capture_maps(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer, method: str) -> Capture:
    """capture at `layer`, refused with NotApplicable unless its output is (N, K, h, w)."""
    name, _ = resolve_layer(model, layer)
    cap = capture(model, x, target, layer)
    check_feature_maps(cap.acts, layer_subject(name), method)
    return cap


def gradcam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer,
            counterfactual: bool = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., eqs. 1-2): L^c = ReLU(sum_k alpha^c_k A^k), alpha = GAP of dy^c/dA.

    counterfactual=True uses -dy^c/dA (Selvaraju et al., arXiv 1610.02391v4, sec. 3.3, eq. 12): regions whose removal would raise y^c.
    -> (N, h, w), or (N, T, h, w) for T classes per image.
    """
    if not isinstance(counterfactual, bool):
        raise TypeError(f"counterfactual must be True (use -dy/dA) or False, got {counterfactual!r}")
    scores, acts, grads = _capture_maps(model, x, target, layer, "Grad-CAM")
    return per_image(weighted_sum(gradcam_weights(-grads if counterfactual else grads), acts), target)


def gradcam_pp(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhyay et al. 2018, arXiv 1710.11063v3, eq. 20): L^c = ReLU(sum_k w^c_k A^k) with eq. 19's alphas,
    computed exactly from one backward pass. -> (N, h, w), or (N, T, h, w) for T classes per image (N, T)."""
    scores, acts, grads = _capture_maps(model, x, target, layer, "Grad-CAM++")
    return per_image(weighted_sum(gradcampp_weights(acts, grads), acts), target)


class _PositiveGrad(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): at every ReLU the backward signal is
    relu(grad_out) * 1[input > 0], both the forward and the backward sign masks. Acts on the
    model's nn.ReLU modules. x: (N, C, H, W) -> dy^c/dx under that rule, (N, C, H, W) ((N, T, C, H, W)
    for T classes per image)."""
    relus = [m for m in check_model(model).modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise NotApplicable("guided backprop changes the backward pass of nn.ReLU modules, and the model "
                            "has none (a functional relu cannot be hooked); use nn.ReLU modules")
    # The ReLU's own backward multiplies by 1[input > 0]; _PositiveGrad adds relu() on the incoming grad.
    with replaced_outputs(relus, _PositiveGrad.apply):
        return per_image(capture(model, x, target).grads, target)


def guided_gradcam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al., sec. 3.2): guided backprop times the Grad-CAM map
    upsampled bilinearly to the image, element-wise. -> (N, C, H, W), or (N, T, C, H, W) for T classes per image."""
    x = check_images(x)
    cams = gradcam(model, x, target, layer)
    maps = upsample(cams.flatten(0, -3), x.shape[-2:]).unflatten(0, cams.shape[:-2])
    return guided_backprop(model, x, target) * maps.unsqueeze(-3)
