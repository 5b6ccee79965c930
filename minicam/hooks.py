"""The one hook helper every method uses: find a layer, run the model once, and take the layer's
activations A and the gradient of the class score y^c with respect to them.

Only the part of the network *after* the layer enters the gradient, and the gradient is taken with
`torch.autograd.grad` to the layer alone: no full backward pass, no parameter `.grad` written. Every
forward hook of the package is registered here, and removed again, also on error. Which layers can be
explained is decided here too (`explainable_layers`, `default_layer`).
"""
from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from .checks import Layer, NotApplicable, Target, check_finite, check_images, check_model, check_targets, \
    preserved, resolve_layer

__all__ = ["Capture", "capture", "forward_acts", "explainable_layers", "default_layer"]


class Capture(NamedTuple("Capture", [("scores", torch.Tensor), ("acts", torch.Tensor), ("grads", torch.Tensor)])):
    """One forward and one backward pass to a layer: scores (N, C) pre-softmax, acts (N, K, h, w) the layer's
    output A, grads dy^c/dA for each image's target c; for T classes per image, a row per (image, class) pair,
    image by image. `capture` also sets `targets` (each row's class) and `layer` (the layer's name)."""
    targets: torch.Tensor | None = None
    layer: str | None = None


@contextlib.contextmanager
def hooked(hooks: Sequence[tuple[nn.Module, Callable]]):
    """Forward hooks, (module, hook) pairs, registered for the duration of a `with` block."""
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


def pair_rows(t: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """t (N, ...) with one row per (image, class) pair: each image's row repeated for its T classes if
    targets is (N, T), image by image; t itself if targets is (N,)."""
    return t.repeat_interleave(targets.shape[1], dim=0) if targets.dim() == 2 else t


def per_image(maps: torch.Tensor, target: Target) -> torch.Tensor:
    """Maps of the N*T (image, class) pairs of a (N, T) target as (N, T, ...); other maps as they are."""
    return maps.unflatten(0, (-1, target.shape[1])) if getattr(target, "ndim", 0) == 2 else maps


def capture(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer | None = None) -> Capture:
    """One forward pass, then dy^c/dA by autograd to `layer` only (None: A is the input image x (N, C, H, W)).
    target: an int, one class per image (N,), T per image (N, T) (a backward pass and a row per pair), or a
    function of the detached scores giving them, e.g. lambda s: s.topk(3, dim=1).indices (classes chosen from
    this very pass). Eval mode, the model left as it was; NotApplicable if no graph leads back to A."""
    model, x = check_model(model), check_images(x)
    name, module = (None, None) if layer is None else resolve_layer(model, layer)
    seen: list[torch.Tensor] = []

    def graph_from(_module, _inputs, output):  # dy/dA needs only the graph after the layer: it starts at A
        seen.append(output.detach().requires_grad_(True))
        return seen[-1].clone()  # a clone goes on, so an in-place op downstream (ReLU(inplace=True)) cannot change A

    with preserved(model), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True) if layer is None else x.clone() if x.is_inference() else x
        handle = None if layer is None else module.register_forward_hook(graph_from)
        try:
            scores = check_finite(model(x), "the model's scores", dims=(2,), shape="(N, classes)")
        finally:
            handle is None or handle.remove()  # the hook goes, also when the model raises
        if layer is not None and len(seen) != 1:
            raise ValueError(f"layer {name!r} ran {len(seen)} times in one forward pass, so it has no single "
                             "output; choose a layer that runs exactly once (e.g. its parent block)")
        target = target(scores.detach()) if callable(target) else target  # classes chosen from this very pass
        acts, targets = x if layer is None else seen[0], check_targets(target, len(x), scores.shape[1], several=True)
        columns = targets.T if targets.dim() == 2 else targets[None]
        grads = [torch.autograd.grad(scores.gather(1, c.to(scores.device)[:, None]).sum(), acts, allow_unused=True,
                                     retain_graph=True)[0] if scores.requires_grad else None for c in columns]
    if grads[0] is None:
        raise NotApplicable(f"the class scores have no autograd graph back to {f'layer {name!r}' if name else 'the input x'}"
                            ": the model computes them under no_grad or with .detach(), so dy/dA does not exist; "
                            "run its forward without them, choose a layer the scores depend on, or use CAM or LRP")
    rows = len(columns)  # each image's row once per class, image by image
    cap = Capture(*(t.detach().repeat_interleave(rows, 0) for t in (scores, acts)), torch.stack(grads, 1).flatten(0, 1))
    cap.targets, cap.layer = targets.flatten(), name
    return cap


def forward_acts(model: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Scores and the outputs of several layers from one forward pass, without gradients.

    layers: a list of layers (names or modules); one layer alone counts as a list of one.
    Returns (scores (N, classes), [acts (N, K, h, w) for each layer]).
    """
    model, x = check_model(model), check_images(x)
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers must be a list of layer names or modules, got {type(layers).__name__}")
    resolved = [resolve_layer(model, layer) for layer in layers]
    outs: list[list[torch.Tensor]] = [[] for _ in resolved]
    keep = [(module, lambda _m, _i, out, seen=seen: seen.append(out.detach().clone()))
            for (_, module), seen in zip(resolved, outs)]
    with hooked(keep), preserved(model), torch.no_grad():
        scores = check_finite(model(x), "the model's scores", dims=(2,), shape="(N, classes)")
    ran = [(name, len(seen)) for (name, _), seen in zip(resolved, outs) if len(seen) != 1]
    if ran:
        raise ValueError(f"layer {ran[0][0]!r} ran {ran[0][1]} times in one forward pass, so it has no single "
                         "output; choose a layer that runs exactly once")
    return scores, [seen[0] for seen in outs]


class Trace(NamedTuple):
    """What one forward pass shows about a model's modules: the scores, their names in the order they
    finish, how often each ran, the shape of its (first) output (None if not a tensor), and the spatial
    mean (N, K) of 4-D outputs (what global average pooling would make of them)."""
    scores: torch.Tensor
    order: list
    runs: dict
    shapes: dict
    means: dict


def trace(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run a checked model once on clean images x (N, C, H, W), without gradients, watching every named module."""
    order, runs, shapes, means = [], {}, {}, {}

    def watch(name):
        def hook(_module, _inputs, out):
            if name not in runs:
                order.append(name)
                shapes[name] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
                if isinstance(out, torch.Tensor) and out.dim() == 4:
                    means[name] = out.detach().mean(dim=(2, 3))
            runs[name] = runs.get(name, 0) + 1
        return hook

    with hooked([(module, watch(name)) for name, module in model.named_modules() if name]), \
            preserved(model), torch.no_grad():
        scores = check_finite(model(x), "the model's scores", dims=(2,), shape="(N, classes)")
    return Trace(scores, order, runs, shapes, means)


def explainable(found: Trace) -> list[str]:
    """The layers of a trace whose output is one (N, K, h, w) map per image: they ran once."""
    return [name for name in found.order if found.runs[name] == 1 and found.shapes[name] is not None
            and len(found.shapes[name]) == 4]


def explainable_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The layers a map can be taken at, in forward order: every named module that runs exactly once in a
    forward pass on x (N, C, H, W) and outputs (N, K, h, w). The one filter the explorer and the apps use."""
    return explainable(trace(check_model(model), check_images(x)))


def default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last explainable layer whose maps have spatial extent (h * w > 1), e.g. the last conv block:
    a 1x1 map (a squeeze-excitation branch, the pooled features) has nothing to locate."""
    found = trace(check_model(model), check_images(x))
    spatial = [name for name in explainable(found) if found.shapes[name][2] * found.shapes[name][3] > 1]
    if not spatial:
        raise NotApplicable("the model has no layer that runs once and outputs (N, K, h, w) maps with h * w > 1 "
                            "on these images; give a layer by name, or larger images")
    return spatial[-1]
