"""The one hook helper every method uses: find a layer, run the model once, and take the layer's
activations A and the gradient of the class score y^c with respect to them.

Only the part of the network *after* the layer is recorded for autograd, and the gradient is taken
with `torch.autograd.grad` to the layer alone: no full backward pass, no parameter `.grad` written.
Every forward hook of the package is registered here (`hooked`), and removed again, also on error.
"""
from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from .checks import (Layer, Target, check_images, check_runs_once, check_scores, check_targets,  # noqa: F401
                     preserved, resolve_layer)  # resolve_layer and the checks stay importable from here


class Capture(NamedTuple):
    """What one forward pass and one backward pass to a layer give.

    scores: (N, C) pre-softmax outputs; acts: (N, K, h, w) the layer's output A;
    grads: (N, K, h, w) dy^c/dA for each image's own target c.
    """
    scores: torch.Tensor
    acts: torch.Tensor
    grads: torch.Tensor


@contextlib.contextmanager
def hooked(hooks: Sequence[tuple[nn.Module, Callable]]):
    """Register forward hooks, (module, hook) pairs, for the duration of a `with` block."""
    handles = []
    try:
        handles += [module.register_forward_hook(hook) for module, hook in hooks]
        yield
    finally:
        for handle in handles:
            handle.remove()


def replaced_outputs(modules: Sequence[nn.Module], replace: Callable):
    """A `with` block in which each module's output t is replaced by replace(t) (guided backprop's
    ReLUs pass their output through a function with its own backward)."""
    return hooked([(module, lambda _m, _i, out: replace(out)) for module in modules])


def score_sum(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target score; images are independent in eval mode, so its
    gradient holds each image's own dy^c/d(...)."""
    return scores.gather(1, targets[:, None]).sum()


def _capture_input(model: nn.Module, x: torch.Tensor, target: Target) -> Capture:
    """capture with the input image itself as A."""
    with preserved(model), torch.enable_grad():
        image = x.detach().clone().requires_grad_(True)
        scores = check_scores(model(image))
        targets = check_targets(target, len(x), scores.shape[1])
        (grads,) = torch.autograd.grad(score_sum(scores, targets), image)
    return Capture(scores.detach(), image.detach(), grads)


def _graph_from(name: str, seen: list):
    """A forward hook that starts the autograd graph at the layer's output (what comes before is not
    needed for dy/dA) and keeps that output in `seen`."""
    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"layer {name!r} returns {type(output).__name__}, not a tensor; choose another layer")
        acts = output.detach().requires_grad_(True)
        seen.append(acts)
        torch.set_grad_enabled(True)
        # A clone goes on, so an in-place op downstream (ReLU(inplace=True)) cannot change acts.
        return acts.clone()
    return hook


def capture(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer | None = None) -> Capture:
    """One forward pass, then dy^c/dA by autograd to `layer` only.

    layer=None takes the input image itself as A (for saliency). x: (N, C, H, W).
    The model runs in eval mode (restored afterwards); works inside torch.no_grad().
    """
    x = check_images(x)
    if layer is None:
        return _capture_input(model, x, target)
    name, module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []
    grad_mode, grads = torch.is_grad_enabled(), None
    try:
        with hooked([(module, _graph_from(name, seen))]), preserved(model):
            torch.set_grad_enabled(False)
            scores = check_scores(model(x))
            check_runs_once(name, len(seen))
            targets = check_targets(target, len(x), scores.shape[1])
            if scores.requires_grad:
                (grads,) = torch.autograd.grad(score_sum(scores, targets), seen[0], allow_unused=True)
    finally:
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
    outs: list[list[torch.Tensor]] = [[] for _ in resolved]
    keep = [(module, lambda _m, _i, out, seen=seen: seen.append(out.detach().clone()))
            for (_, module), seen in zip(resolved, outs)]
    with hooked(keep), preserved(model), torch.no_grad():
        scores = check_scores(model(x))
    for (name, _), seen in zip(resolved, outs):
        check_runs_once(name, len(seen), hint="")
    return scores, [seen[0] for seen in outs]


class Trace(NamedTuple):
    """What one forward pass shows about a model's modules: their names in the order they finish,
    how often each ran, the dimension of its (first) output, and the spatial mean (N, K) of 4-D
    outputs (what global average pooling would make of them)."""
    scores: torch.Tensor
    order: list
    runs: dict
    ndim: dict
    means: dict


def trace(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run the model once on x (N, C, H, W), without gradients, watching every named module."""
    found = Trace(None, [], {}, {}, {})

    def watch(name):
        def hook(_module, _inputs, out):
            if name not in found.runs:
                found.order.append(name)
                found.ndim[name] = out.dim() if isinstance(out, torch.Tensor) else None
                if found.ndim[name] == 4:
                    found.means[name] = out.detach().mean(dim=(2, 3))
            found.runs[name] = found.runs.get(name, 0) + 1
        return hook

    with hooked([(module, watch(name)) for name, module in model.named_modules() if name]), \
            preserved(model), torch.no_grad():
        scores = check_scores(model(check_images(x)))
    return found._replace(scores=scores)
