"""The one hook helper every method uses: find a layer, run the model once, and take the layer's
activations A and the gradient of the class score y^c with respect to them.

Only the part of the network *after* the layer is recorded for autograd, and the gradient is taken
with `torch.autograd.grad` to the layer alone: no full backward pass, no parameter `.grad` written.
"""
from __future__ import annotations

import contextlib
import difflib
from typing import NamedTuple, Sequence, Union

import torch
from torch import nn

Layer = Union[str, nn.Module]
Target = Union[int, Sequence[int], torch.Tensor]


class Capture(NamedTuple):
    """What one forward pass and one backward pass to a layer give.

    scores: (N, C) pre-softmax outputs; acts: (N, K, h, w) the layer's output A;
    grads: (N, K, h, w) dy^c/dA for each image's own target c.
    """
    scores: torch.Tensor
    acts: torch.Tensor
    grads: torch.Tensor


def check_images(x) -> torch.Tensor:
    """Return x if it is a floating (N, C, H, W) tensor, else raise saying what would be right."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}; "
                         "for one image use x.unsqueeze(0)")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got dtype {x.dtype}; use x.float()")
    return x


def check_targets(target: Target, n: int, num_classes: int) -> torch.Tensor:
    """One class index per image, as a (N,) long tensor; an int means the same class for all."""
    if isinstance(target, bool):
        raise TypeError("target must be an int class index (or one per image), not a bool")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
        t = target.reshape(-1).long() if target.dim() <= 1 else None
        if t is None:
            raise ValueError(f"target must be an int or 1-D, got shape {tuple(target.shape)}")
        if t.numel() == 1:
            t = t.expand(n).clone()
    elif isinstance(target, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in target):
            raise TypeError("target as a list must hold ints (one class index per image)")
        t = torch.tensor(list(target), dtype=torch.long)
    else:
        raise TypeError(f"target must be an int, a list of ints or a tensor, got {type(target).__name__}")
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} entries but x holds {n} images; "
                         "give one int for all images or one per image")
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.numel():
        raise ValueError(f"target {bad[0].item()} is out of range: the model has {num_classes} "
                         f"classes, so targets must lie in 0..{num_classes - 1}")
    return t


def resolve_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """Find `layer` (a dotted name from model.named_modules(), or the module itself) in the model."""
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for name, module in modules.items():
            if module is layer:
                return name, module
        raise ValueError(f"the module {layer.__class__.__name__} given as layer is not part of the model")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a name from model.named_modules() or an nn.Module, "
                        f"got {type(layer).__name__}")
    if layer in modules and layer != "":
        return layer, modules[layer]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=len(names), cutoff=0.0)
    shown = ", ".join(repr(n) for n in close[:12]) + (", ..." if len(close) > 12 else "")
    raise ValueError(f"layer {layer!r} not found; layers are (closest first): {shown}")


def check_scores(scores) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"the model must return class scores of shape (N, classes), got {shape}")
    return scores


@contextlib.contextmanager
def preserved(model: nn.Module):
    """Run the model in eval mode; afterwards every module's mode and every parameter's
    requires_grad and .grad are exactly as they were, whatever happened inside."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    model.eval()  # dropout and batch statistics would otherwise make the map random and batch-dependent
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in params:
            p.requires_grad_(flag)
            p.grad = grad


def score_sum(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target score; images are independent in eval mode, so its
    gradient holds each image's own dy^c/d(...)."""
    return scores.gather(1, targets[:, None]).sum()


def capture(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer | None = None) -> Capture:
    """One forward pass, then dy^c/dA by autograd to `layer` only.

    layer=None takes the input image itself as A (for saliency). x: (N, C, H, W).
    The model runs in eval mode (restored afterwards); works inside torch.no_grad().
    """
    x = check_images(x)
    if layer is None:
        with preserved(model), torch.enable_grad():
            image = x.detach().clone().requires_grad_(True)
            scores = check_scores(model(image))
            targets = check_targets(target, len(x), scores.shape[1])
            (grads,) = torch.autograd.grad(score_sum(scores, targets), image)
        return Capture(scores.detach(), image.detach(), grads)

    name, module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"layer {name!r} returns {type(output).__name__}, not a tensor; choose another layer")
        # The graph starts here: what comes before the layer is not needed for dy/dA.
        acts = output.detach().requires_grad_(True)
        seen.append(acts)
        torch.set_grad_enabled(True)
        # A clone goes on, so an in-place op downstream (ReLU(inplace=True)) cannot change acts.
        return acts.clone()

    grad_mode = torch.is_grad_enabled()
    handle = module.register_forward_hook(hook)
    try:
        with preserved(model):
            torch.set_grad_enabled(False)
            scores = check_scores(model(x))
            if len(seen) != 1:
                raise ValueError(f"layer {name!r} ran {len(seen)} times in one forward pass; "
                                 "choose a layer that runs exactly once (e.g. its parent block)")
            targets = check_targets(target, len(x), scores.shape[1])
            grads = None
            if scores.requires_grad:
                (grads,) = torch.autograd.grad(score_sum(scores, targets), seen[0], allow_unused=True)
    finally:
        handle.remove()
        torch.set_grad_enabled(grad_mode)
    acts = seen[0].detach()
    if grads is None:  # the score does not depend on this layer at all
        grads = torch.zeros_like(acts)
    return Capture(scores.detach(), acts, grads)


def forward_acts(model: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Scores and the outputs of several layers from one forward pass, without gradients.

    Returns (scores (N, classes), [acts (N, K, h, w) for each layer]).
    """
    x = check_images(x)
    resolved = [resolve_layer(model, layer) for layer in layers]
    outs: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(resolved))}
    handles = []
    try:
        for i, (_, module) in enumerate(resolved):
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, i=i: outs[i].append(out.detach().clone())))
        with preserved(model), torch.no_grad():
            scores = check_scores(model(x))
    finally:
        for h in handles:
            h.remove()
    for i, (name, _) in enumerate(resolved):
        if len(outs[i]) != 1:
            raise ValueError(f"layer {name!r} ran {len(outs[i])} times in one forward pass; "
                             "choose a layer that runs exactly once")
    return scores, [outs[i][0] for i in range(len(resolved))]
