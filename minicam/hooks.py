"""The one hook helper every method uses: find a layer, run the model once, and take the layer's
activations A and the gradient of the class score y^c with respect to them.

Only the part of the network *after* the layer is recorded for autograd, and the gradient is taken
with `torch.autograd.grad` to the layer alone: no full backward pass, no parameter `.grad` written.
Every forward hook of the package is registered here (`hooked`), and removed again, also on error.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from torch import nn

from .checks import (Layer, NotApplicable, Target, check_images, check_model, check_runs_once,  # noqa: F401
                     check_scores, check_targets, layer_subject, preserved, resolve_layer)
# resolve_layer and the checks stay importable from here


class _CaptureFields(NamedTuple):
    scores: torch.Tensor
    acts: torch.Tensor
    grads: torch.Tensor


class Capture(_CaptureFields):
    """What one forward pass and one backward pass to a layer give.

    scores: (N, C) pre-softmax outputs; acts: (N, K, h, w) the layer's output A;
    grads: (N, K, h, w) dy^c/dA for each image's own target c.
    For a target of T classes per image, (N, T), a row is one (image, class) pair, N*T rows image by
    image (`pair_rows`): the same forward pass, one backward pass per class.
    """
    __slots__ = ()

    def __new__(cls, scores: torch.Tensor, acts: torch.Tensor, grads: torch.Tensor):
        check_scores(scores)
        for name, t in (("acts", acts), ("grads", grads)):
            if not isinstance(t, torch.Tensor) or t.dim() < 1 or len(t) != len(scores):
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{name} must be a tensor with one row per image, {len(scores)} as scores has, "
                                 f"got {got}")
        if grads.shape != acts.shape:
            raise ValueError(f"grads must have the shape of acts {tuple(acts.shape)} (dy/dA), got {tuple(grads.shape)}")
        return super().__new__(cls, scores, acts, grads)


def _check_hooks(pairs, what: str) -> list:
    """pairs as a list of (nn.Module, callable), else a TypeError naming `what`."""
    if isinstance(pairs, (str, nn.Module)) or not isinstance(pairs, Iterable):
        raise TypeError(f"{what} must be a list of (nn.Module, hook) pairs, got {type(pairs).__name__}")
    pairs = list(pairs)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], nn.Module) and callable(pair[1])):
            raise TypeError(f"{what} must be a list of (nn.Module, hook) pairs with a callable hook, got {pair!r}")
    return pairs


def hooked(hooks: Sequence[tuple[nn.Module, Callable]]):
    """Register forward hooks, (module, hook) pairs, for the duration of a `with` block."""
    return _hooked(_check_hooks(hooks, "hooks"))


@contextlib.contextmanager
def _hooked(hooks: list):
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
    if not callable(replace):
        raise TypeError(f"replace must be a function of the module's output, got {type(replace).__name__}")
    if isinstance(modules, nn.Module) or not isinstance(modules, Iterable) \
            or not all(isinstance(m, nn.Module) for m in modules):
        raise TypeError(f"modules must be a list of nn.Module, got {modules!r:.80}")
    return _hooked([(module, lambda _m, _i, out: replace(out)) for module in modules])


def pair_rows(t: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """t (N, ...) with one row per (image, class) pair of targets: each image's row repeated for its
    T classes if targets is (N, T), image by image; t itself if targets is (N,)."""
    if not isinstance(targets, torch.Tensor) or targets.dim() not in (1, 2):
        raise TypeError(f"targets must be the (N,) or (N, T) tensor check_targets gives, got {targets!r:.60}")
    if not isinstance(t, torch.Tensor) or t.dim() == 0 or len(t) != len(targets):
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a tensor with one row per image, {len(targets)} as targets has, got {got}")
    return t.repeat_interleave(targets.shape[1], dim=0) if targets.dim() == 2 else t


def per_image(maps: torch.Tensor, target: Target) -> torch.Tensor:
    """Maps of the N*T (image, class) pairs of a (N, T) target as (N, T, ...); other maps as they are."""
    if getattr(target, "ndim", 0) != 2:
        return maps
    if not isinstance(maps, torch.Tensor) or maps.dim() == 0 or len(maps) % target.shape[1]:
        got = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"maps must have one row per (image, class) pair, a multiple of the target's "
                         f"{target.shape[1]} classes per image, got {got}")
    return maps.unflatten(0, (-1, target.shape[1]))


def score_sum(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target score; images are independent in eval mode, so its
    gradient holds each image's own dy^c/d(...). targets: (N,) class indices, as check_targets gives."""
    check_scores(scores)
    if not isinstance(targets, torch.Tensor) or targets.shape != scores.shape[:1] or targets.dtype != torch.long:
        got = f"{tuple(targets.shape)} {targets.dtype}" if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a ({len(scores)},) long tensor, one class per image (use check_targets), "
                         f"got {got}")
    return scores.gather(1, targets.to(scores.device)[:, None]).sum()


def score_grad(scores: torch.Tensor, targets: torch.Tensor, wrt: torch.Tensor, what: str,
               retain_graph: bool = False) -> torch.Tensor:
    """d(sum of each image's y^c)/d wrt by autograd; NotApplicable if the scores have no graph back to
    `wrt` (`what` names it): a gradient that does not exist is not read as zero.
    targets (N, T): one backward pass per class column, the graph kept between them; the gradients
    of the N*T (image, class) pairs come back image by image, as `pair_rows` orders them."""
    if isinstance(targets, torch.Tensor) and targets.dim() == 2:
        last = targets.shape[1] - 1
        grads = [score_grad(scores, column, wrt, what, retain_graph or k < last) for k, column in enumerate(targets.T)]
        return torch.stack(grads, dim=1).flatten(0, 1)
    total, grads = score_sum(scores, targets), None
    if total.requires_grad:
        (grads,) = torch.autograd.grad(total, wrt, allow_unused=True, retain_graph=retain_graph)
    if grads is None:
        raise NotApplicable(f"the class scores have no autograd graph back to {what}: the model computes them "
                            f"under torch.no_grad() or with .detach() (or does not use {what} for them), so "
                            "dy/dA does not exist. Gradient methods need the graph: run the model's forward "
                            "without no_grad/detach, choose a layer the scores depend on, or use CAM or LRP")
    return grads


def _captured(scores: torch.Tensor, acts: torch.Tensor, target: Target, what: str) -> Capture:
    """The Capture of one forward pass that gave scores and acts (A, in the autograd graph)."""
    targets = check_targets(target, len(acts), scores.shape[1], several=True)
    grads = score_grad(scores, targets, acts, what)
    return Capture(pair_rows(scores.detach(), targets), pair_rows(acts.detach(), targets), grads)


def _capture_input(model: nn.Module, x: torch.Tensor, target: Target) -> Capture:
    """capture with the input image itself as A."""
    with preserved(model), torch.enable_grad():
        image = x.detach().clone().requires_grad_(True)
        return _captured(check_scores(model(image)), image, target, "the input x")


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

    layer=None takes the input image itself as A (for saliency). x: (N, C, H, W), finite.
    target: an int, one class per image (N,), or T classes per image (N, T): one backward pass per
    class, and the Capture's rows are the N*T (image, class) pairs (see Capture).
    The model runs in eval mode (restored afterwards); works inside torch.no_grad() and
    torch.inference_mode(). Raises NotApplicable if the scores have no autograd graph back to A.
    """
    x = check_images(x)
    if layer is None:
        return _capture_input(model, x, target)
    name, module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []
    grad_mode = torch.is_grad_enabled()
    try:
        with _hooked([(module, _graph_from(name, seen))]), preserved(model):
            torch.set_grad_enabled(False)
            scores = check_scores(model(x))
            check_runs_once(name, len(seen))
            return _captured(scores, seen[0], target, f"layer {layer_subject(name)}")
    finally:
        torch.set_grad_enabled(grad_mode)


def forward_acts(model: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Scores and the outputs of several layers from one forward pass, without gradients.

    layers: a list of layers (names or modules); one layer alone counts as a list of one.
    Returns (scores (N, classes), [acts (N, K, h, w) for each layer]).
    """
    x = check_images(x)
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if not isinstance(layers, Iterable):
        raise TypeError(f"layers must be a list of layer names or modules, got {type(layers).__name__}")
    resolved = [resolve_layer(model, layer) for layer in layers]
    outs: list[list[torch.Tensor]] = [[] for _ in resolved]
    keep = [(module, lambda _m, _i, out, seen=seen: seen.append(out.detach().clone()))
            for (_, module), seen in zip(resolved, outs)]
    with _hooked(keep), preserved(model), torch.no_grad():
        scores = check_scores(model(x))
    for (name, _), seen in zip(resolved, outs):
        check_runs_once(name, len(seen), hint="")
    return scores, [seen[0] for seen in outs]


class _TraceFields(NamedTuple):
    scores: torch.Tensor
    order: list
    runs: dict
    ndim: dict
    means: dict


class Trace(_TraceFields):
    """What one forward pass shows about a model's modules: their names in the order they finish,
    how often each ran, the dimension of its (first) output, and the spatial mean (N, K) of 4-D
    outputs (what global average pooling would make of them)."""
    __slots__ = ()

    def __new__(cls, scores: torch.Tensor, order: list, runs: dict, ndim: dict, means: dict):
        check_scores(scores)
        if not (isinstance(order, list) and all(isinstance(d, dict) for d in (runs, ndim, means))
                and set(order) == set(runs) == set(ndim) and set(means) <= set(order)):
            raise ValueError("order must be the list of the modules' names that ran, and runs, ndim and means "
                             "dicts keyed by those names (means only for 4-D outputs); use trace(model, x)")
        return super().__new__(cls, scores, order, runs, ndim, means)


def trace(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run the model once on x (N, C, H, W), without gradients, watching every named module."""
    x = check_images(x)
    order, runs, ndim, means = [], {}, {}, {}

    def watch(name):
        def hook(_module, _inputs, out):
            if name not in runs:
                order.append(name)
                ndim[name] = out.dim() if isinstance(out, torch.Tensor) else None
                if ndim[name] == 4:
                    means[name] = out.detach().mean(dim=(2, 3))
            runs[name] = runs.get(name, 0) + 1
        return hook

    with _hooked([(module, watch(name)) for name, module in check_model(model).named_modules() if name]), \
            preserved(model), torch.no_grad():
        scores = check_scores(model(x))
    return Trace(scores, order, runs, ndim, means)
