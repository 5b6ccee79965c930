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

__all__ = ["NotApplicable", "Unsupported", "check_model", "check_images", "check_finite", "check_targets",
           "resolve_layer", "whole_number", "check_number",
           "pixel_size"]

Layer = Union[str, nn.Module]
Target = Union[int, Sequence[int], torch.Tensor]  # an int, one class per image (N,), or K per image (N, K)


class NotApplicable(ValueError):
    """The method is not defined for this model or layer (a ValueError, so `except ValueError` still
    catches it); the message says why and what would apply instead."""


class Unsupported(NotApplicable, NotImplementedError):
    """NotApplicable because the model holds something the method cannot handle (LRP and a layer
    type it has no rule for); also a NotImplementedError."""


def check_images(x, name: str = "x") -> torch.Tensor:
    """x if it is a finite, floating (N, C, H, W) tensor, else an error saying what would be right."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise (ValueError if isinstance(x, torch.Tensor) and x.dim() != 4 else TypeError)(
            f"{name} must be a 4-D floating torch.Tensor (N, C, H, W), got {got}; for one image use "
            f"{name}.unsqueeze(0), for integer pixels {name}.float()")
    return check_finite(x, name, ": every pixel must be a number, or the map explains NaN scores")


def check_finite(t: torch.Tensor, name: str, why: str = "", dims: tuple = (), shape: str = "") -> torch.Tensor:
    """t if it is a real tensor (with one of `dims` dimensions, if given) holding no NaN or inf, else an error
    naming `name`: the one finiteness check, for images, maps, scores and boxes."""
    if not isinstance(t, torch.Tensor) or t.is_complex() or (dims and t.dim() not in dims):
        got = f"shape {tuple(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise (ValueError if isinstance(t, torch.Tensor) and not t.is_complex() else TypeError)(
            f"{name} must be a real torch.Tensor {shape}, got {got}")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        raise ValueError(f"{name} holds {int(finite.numel() - finite.sum())} NaN or inf value(s) of "
                         f"{t.numel()}; it must be finite{why}")
    return t


def check_feature_maps(t: torch.Tensor, name: str, method: str) -> torch.Tensor:
    """t if it is (N, K, h, w), channels over positions to weight (CAM family, Relevance-CAM); else NotApplicable."""
    if t.dim() != 4:
        subject = repr(name) if name else "the model itself (layer '')"
        raise NotApplicable(f"{method} needs a layer with (N, K, h, w) output; {subject} gives {tuple(t.shape)}, with "
                            "no channels over positions to weight; choose a conv layer (e.g. the last conv block)")
    return t


def check_targets(target: Target, n: int, num_classes: int | None = None, several: bool = False) -> torch.Tensor:
    """The one reading of a target as (N,) long: an int for all images, a list, tuple, integer tensor or array,
    one per image (one element: for all); several=True: also (N, K), K per image. num_classes=None: no range."""
    low, top = (0, num_classes) if num_classes is not None else (-2 ** 63, 2 ** 63)  # None: only what int64 holds
    bad = "target {} is out of range: " + (f"the model has {num_classes} classes, so targets must lie in 0..{top - 1}"
                                           if num_classes is not None else "a class index fits in 64 bits")
    if isinstance(target, np.ndarray) and target.dtype.kind in "iu":
        target = torch.from_numpy(target.astype(np.int64))
    values = list(target) if isinstance(target, (list, tuple)) else [target]
    if isinstance(target, torch.Tensor) and not (target.is_floating_point() or target.is_complex() or target.dtype == torch.bool):
        if target.dim() > 1 + several or (target.dim() == 2 and target.shape[1] == 0):
            raise ValueError(f"target must be an int or 1-D{', or (N, K) for K classes per image (it needs K >= 1 classes)' if several else ''}"
                             f", got shape {tuple(target.shape)}")
        t = target.long() if target.dim() == 2 else target.reshape(-1).long()
    elif all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in values):
        if any(not low <= v < top for v in values):  # before torch.tensor, which cannot hold 2**63
            raise ValueError(bad.format(next(int(v) for v in values if not low <= v < top)))
        t = torch.tensor([int(v) for v in values], dtype=torch.long)
    else:
        raise TypeError(f"target must hold integer class indices: an int, a list of ints (one per image) or an integer "
                        f"tensor or numpy array, for several classes per image a (N, K) tensor; got "
                        f"{type(target).__name__} {target!r:.60} {getattr(target, 'dtype', '')}")
    if len(t) != n and (isinstance(target, (list, tuple)) or len(t) != 1):
        raise ValueError(f"target has {len(t)} {'rows' if t.dim() == 2 else 'entries'} but x holds {n} images; give "
                         f"one int for all images or one per image{' (or a row of classes per image)' if several else ''}")
    outside = (t < 0) | (t >= num_classes) if num_classes is not None else torch.zeros_like(t, dtype=torch.bool)
    if bool(outside.any()):
        raise ValueError(bad.format(t[outside][0].item()))
    return t if len(t) == n else t.expand(n, *t.shape[1:]).clone()


def check_model(model) -> nn.Module:
    """model as the nn.Module to run, a torch.compile'd model's original module (its graphs skip hooks).
    Refused by name: a non-module, a TorchScript module (no forward hooks), a BatchNorm without running
    statistics (it normalises by the batch: one image's map would depend on the others)."""
    if not isinstance(model, nn.Module) or isinstance(model, torch.jit.ScriptModule):
        hint = (", not a TorchScript module (no hooks): pass the module it was made from" if isinstance(model, nn.Module)
                else "; load a shipped model first: minicam.models.load_pretrained(name)" if isinstance(model, str) else "")
        raise TypeError(f"model must be a torch.nn.Module{hint}, got {type(model).__name__}")
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule wraps the module it compiled
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None:
            raise NotApplicable(f"model's BatchNorm {name!r} keeps no running statistics (track_running_stats=False), "
                                "so even in eval mode one image's map would depend on the other images of the batch; "
                                "give it running statistics (train with track_running_stats=True)")
    return model


def resolve_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """(name, module) of `layer`, a dotted name from model.named_modules() or the module itself."""
    modules = dict(check_model(model).named_modules())
    found = [(n, m) for n, m in modules.items() if m is layer or n == layer and n != ""]
    if found:
        return found[0]
    if not isinstance(layer, (str, nn.Module)):
        raise TypeError(f"layer must be a name from model.named_modules() or an nn.Module, got {type(layer).__name__}")
    close = difflib.get_close_matches(str(layer), [n for n in modules if n], n=12, cutoff=0.0)
    raise ValueError(f"the module {type(layer).__name__} given as layer is not part of the model" if isinstance(
        layer, nn.Module) else f"layer {layer!r} not found; layers are (closest first): "
        f"{', '.join(map(repr, close))}{', ...' if len(modules) > 13 else ''}; pass one of these names (or the module)")


@contextlib.contextmanager
def preserved(model: nn.Module):
    """Runs a checked model in eval mode, outside inference mode; then modes, requires_grad, .grad are as they were."""
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


def check_number(value, name: str, want: str, ok=math.isfinite) -> float:
    """`value` (a real number or a 0-dim real tensor, not a bool) as a float for which ok(value) holds (by
    default: finite), else a TypeError or ValueError naming `name` and saying it must be `want`."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0 and value.dtype not in (torch.bool, np.bool_) \
            and not (value.is_complex() if isinstance(value, torch.Tensor) else np.iscomplexobj(value)):
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r:.60}")
    if not ok(float(value)):  # NaN fails every comparison, so it fails every `ok`
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return float(value)


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
