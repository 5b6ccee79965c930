"""What every map function checks before it computes, and the one promise it keeps afterwards.

The checks turn a wrong argument into an error that names it and says what would be right; `preserved`
leaves the model exactly as it was found. `NotApplicable` is the one error that means "this method
is not defined here" (CAM away from GAP -> fc, LRP on a layer it cannot walk), as opposed to a
mistake in the arguments or in the model.
"""
from __future__ import annotations

import contextlib
import difflib
import math
import numbers
import operator
from typing import Sequence, Union

import numpy as np
import torch
from torch import nn

Layer = Union[str, nn.Module]
Target = Union[int, Sequence[int], torch.Tensor]  # an int, one class per image (N,), or K per image (N, K)


class NotApplicable(ValueError):
    """The method is not defined for this model or layer (a ValueError, so `except ValueError` still
    catches it); the message says why and what would apply instead."""

    def __init__(self, message: str):
        if not isinstance(message, str) or not message.strip():
            raise TypeError(f"{type(self).__name__} needs a message: a str saying why the method does not "
                            f"apply and what would apply instead, got {message!r}")
        super().__init__(message)


class Unsupported(NotApplicable, NotImplementedError):
    """NotApplicable because the model holds something the method cannot handle (LRP and a layer
    type it has no rule for); also a NotImplementedError."""


def check_images(x, name: str = "x") -> torch.Tensor:
    """Return x if it is a finite, floating (N, C, H, W) tensor, else raise saying what would be right.

    An x made under torch.inference_mode() comes back as a normal copy: autograd can use it outside
    inference mode (an inference tensor cannot be saved for backward), and x itself is not touched.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}; "
                         f"for one image use {name}.unsqueeze(0)")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}; use {name}.float()")
    check_finite(x, name, ": every pixel must be a number, or the map explains NaN scores")
    if x.is_inference():
        with torch.inference_mode(False):
            return x.clone()
    return x


def check_finite(t: torch.Tensor, name: str, why: str = "") -> torch.Tensor:
    """t if none of its values is NaN or inf, else a ValueError naming `name` and counting them."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        raise ValueError(f"{name} holds {int(finite.numel() - finite.sum())} NaN or inf value(s) of "
                         f"{t.numel()}; it must be finite{why}")
    return t


def check_feature_maps(t, subject: str, method: str) -> torch.Tensor:
    """t if it is (N, K, h, w), a conv layer's channels over positions: the only output the CAM family
    and Relevance-CAM weight channel by channel. Else NotApplicable naming `subject` (a layer's name
    as `layer_subject` gives it, or an argument)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{subject} must be a torch.Tensor of shape (N, K, h, w), got {type(t).__name__}")
    if t.dim() != 4:
        raise NotApplicable(f"{method} needs a layer with (N, K, h, w) output; {subject} gives {tuple(t.shape)}, "
                            "which has no channels over positions to weight; choose a conv layer "
                            "(e.g. the last conv block's output)")
    return t


def layer_subject(name: str) -> str:
    """How an error names a layer: 'features.3', or the model itself for the name ''."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a layer's name from model.named_modules(), a str, got {type(name).__name__}")
    return repr(name) if name else "the model itself (layer '')"


def _is_index(value) -> bool:
    """An int or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _as_target_tensor(target: Target, n: int, several: bool) -> torch.Tensor:
    """target as a (N,) long tensor (or (N, K) if several), not yet checked against n or the number of classes."""
    if isinstance(target, (bool, np.bool_)):
        raise TypeError("target must be an int class index (or one per image), not a bool")
    if _is_index(target):
        return torch.full((n,), int(target), dtype=torch.long)
    if isinstance(target, np.ndarray):
        if target.dtype.kind not in "iu":
            raise TypeError(f"target as a numpy array must hold integer class indices, got dtype {target.dtype}")
        target = torch.from_numpy(target.astype(np.int64))
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
        if target.dim() > 1 + several:
            raise ValueError(f"target must be an int or 1-D{', or (N, K) for K classes per image' if several else ''}, "
                             f"got shape {tuple(target.shape)}")
        if target.dim() == 2:
            return _as_class_table(target.long(), n)
        t = target.reshape(-1).long()
        return t.expand(n).clone() if t.numel() == 1 else t
    if isinstance(target, (list, tuple)):
        if not all(_is_index(v) for v in target):
            raise TypeError("target as a list must hold ints (one class index per image); for several classes per "
                            "image give a (N, K) tensor")
        return torch.tensor([int(v) for v in target], dtype=torch.long)
    raise TypeError(f"target must be an int, a list of ints or a tensor (or numpy array) of them, "
                    f"got {type(target).__name__}")


def _as_class_table(t: torch.Tensor, n: int) -> torch.Tensor:
    """A (N, K) target: K >= 1 classes for each image; one row (1, K) means the same K classes for all."""
    if t.shape[1] == 0:
        raise ValueError(f"target of shape {tuple(t.shape)} names no class; a (N, K) target needs K >= 1 classes "
                         "per image")
    return t.expand(n, -1).clone() if len(t) == 1 else t


def check_targets(target: Target, n: int, num_classes: int, several: bool = False) -> torch.Tensor:
    """One class index per image, as a (N,) long tensor; an int means the same class for all.

    several=True also takes a (N, K) tensor or numpy array, K classes for each image (a (1, K) row: the
    same K for every image), returned as (N, K): what the map functions accept.
    """
    t = _as_target_tensor(target, n, several)
    if len(t) != n:
        raise ValueError(f"target has {len(t)} {'rows' if t.dim() == 2 else 'entries'} but x holds {n} images; "
                         "give one int for all images or one per image"
                         + (" (or one row of classes per image)" if several else ""))
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.numel():
        raise ValueError(f"target {bad[0].item()} is out of range: the model has {num_classes} "
                         f"classes, so targets must lie in 0..{num_classes - 1}")
    return t


def check_scores(scores) -> torch.Tensor:
    """Return scores if they are (N, classes), else raise: a map method needs class scores."""
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"the model must return class scores of shape (N, classes), got {shape}")
    return scores


def check_runs_once(name: str, runs: int, hint: str = " (e.g. its parent block)") -> None:
    """A layer's activations are one tensor only if the layer ran exactly once in the forward pass."""
    runs = whole_number(runs, "runs", 0, floats=False, want="the number of times the layer ran, an int >= 0")
    if runs != 1:
        raise ValueError(f"layer {name!r} ran {runs} times in one forward pass, and a layer that runs {runs} "
                         f"times has no single output; choose a layer that runs exactly once{hint}")


def check_model(model) -> nn.Module:
    """model if it is a torch.nn.Module; a shipped model's name ("shapes_vgg") is refused with the hint
    to load it with minicam.models.load_pretrained."""
    if not isinstance(model, nn.Module):
        hint = "; load a shipped model first: minicam.models.load_pretrained(name)" if isinstance(model, str) else ""
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}{hint}")
    return model


def resolve_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """Find `layer` (a dotted name from model.named_modules(), or the module itself) in the model."""
    modules = dict(check_model(model).named_modules())
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
    raise ValueError(f"layer {layer!r} not found; layers are (closest first): {shown}; pass one of these "
                     "names (or the module itself)")


def preserved(model: nn.Module):
    """A `with` block that runs the model in eval mode and outside torch.inference_mode(); afterwards
    every module's mode and every parameter's requires_grad and .grad are exactly as they were, and so
    are torch's grad mode and inference mode, whatever happened inside.

    Inside, grad mode is what it was outside (off if the caller was in inference mode), but
    torch.enable_grad() works again: in inference mode it would have no effect, and every gradient
    would be missing.
    """
    return _preserved(check_model(model))


@contextlib.contextmanager
def _preserved(model: nn.Module):
    grad_mode = torch.is_grad_enabled()
    with torch.inference_mode(False), torch.set_grad_enabled(grad_mode):
        modes = [(m, m.training) for m in model.modules()]
        params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
        model.eval()  # dropout and batch statistics would otherwise make the map random and batch-dependent
        try:
            yield model
        finally:
            for m, mode in modes:
                m.training = mode
            for p, flag, grad in params:
                if p.requires_grad != flag:
                    p.requires_grad_(flag)
                if p.grad is not grad:
                    p.grad = grad


def whole_number(value, name: str, minimum: int | None = None, floats: bool = True, want: str | None = None) -> int:
    """`value` as an int, or a ValueError/TypeError naming `name` and what would be right.

    Accepts ints, numpy integers and 0-dim integer tensors; with floats=True also a float with a whole
    value (64.0). Refuses bools, fractions, NaN and inf.
    """
    want = want or (f"an integer >= {minimum}" if minimum is not None else "an integer")
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be {want}, got the bool {value!r}")
    try:
        whole = operator.index(value)
    except TypeError:
        real = isinstance(value, numbers.Real)
        if not (floats and real and math.isfinite(value) and value == int(value)):
            raise (ValueError if real else TypeError)(
                f"{name} must be {want}, got {value!r} ({type(value).__name__})") from None
        whole = int(value)
    if minimum is not None and whole < minimum:
        raise ValueError(f"{name} must be {want}, got {whole}")
    return whole


def pixel_size(size, name: str = "size") -> tuple[int, int]:
    """An int or an (H, W) pair of whole, positive pixel counts -> (H, W) ints."""
    if isinstance(size, (tuple, list, torch.Size)):
        if len(size) != 2:
            raise ValueError(f"{name} must be an int or (H, W), got {tuple(size)}")
        return whole_number(size[0], f"{name}[0] (H)", 1), whole_number(size[1], f"{name}[1] (W)", 1)
    if isinstance(size, str) or not isinstance(size, (numbers.Real, torch.Tensor)):
        raise TypeError(f"{name} must be an int or (H, W), got {type(size).__name__}")
    side = whole_number(size, name, 1)
    return side, side
