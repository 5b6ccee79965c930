"""Plotting at the edge: tensors in, matplotlib axes out. Nothing here computes a map."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .checks import check_finite, check_number, whole_number
from .data import CLASSES, ShapesBatch, _is_int, _rows
from .maps import normalize, upsample

__all__ = ["to_rgb", "show_map", "overlay", "show_shapes"]


def check_map(value, name: str, dims=(2,), want: str = "(h, w)") -> torch.Tensor:
    """value if it is a real, finite, non-empty tensor with one of `dims` dimensions, else an error
    naming `name` and what would be right: a picture of NaN or inf would be a silent blank."""
    check_finite(value, name, ": check the map's computation (a picture of it would be blank there)", dims=dims,
                 shape=want)
    if value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor {want}, got shape {tuple(value.shape)}")
    return value


def to_rgb(image: torch.Tensor):
    """(3, H, W) or (1, H, W) tensor in [0, 1] -> (H, W, 3) numpy array for imshow."""
    check_map(image, "image", dims=(3,), want="(C, H, W)")
    if image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C = 1 or 3, got shape {tuple(image.shape)}")
    image = image.detach().float().clamp(0, 1)
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.permute(1, 2, 0).cpu().numpy()


def _finish(ax, im, title: str | None, colorbar: bool):
    """Title, no axes, and a colour bar beside the image if asked for. Returns the AxesImage."""
    if title:
        ax.set_title(title)
    ax.axis("off")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def show_map(raw: torch.Tensor, ax=None, title: str | None = None, cmap: str = "jet", colorbar: bool = True,
             **kwargs):
    """Draw one raw map (h, w) with its own colour bar. Returns the AxesImage."""
    check_map(raw, "raw")
    ax = ax if ax is not None else plt.gca()
    im = ax.imshow(raw.detach().float().cpu().numpy(), cmap=cmap, **kwargs)
    return _finish(ax, im, title, colorbar)


def overlay(image: torch.Tensor, raw: torch.Tensor, ax=None, title: str | None = None, alpha: float = 0.5,
            cmap: str = "jet", colorbar: bool = True):
    """The image (C, H, W) with a raw map (h, w) upsampled to it, min-max normalised, on top.
    The colour bar reads the normalised map (0 = its min, 1 = its max). Returns the AxesImage."""
    rgb = to_rgb(image)
    check_map(raw, "raw")
    alpha = check_number(alpha, "alpha", "a number in [0, 1] (the map's opacity)", lambda v: 0 <= v <= 1)
    ax = ax if ax is not None else plt.gca()
    heat = normalize(upsample(raw.detach().float(), image.shape[-2:]))
    ax.imshow(rgb)
    im = ax.imshow(heat.cpu().numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    return _finish(ax, im, title, colorbar)


# ---- shapes world ---------------------------------------------------------------------------

_BOX_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange")


def show_shapes(batch, index=None, ax=None, ncols=4, show_boxes=True):
    """Draw images of a ShapesBatch with their boxes and class names.

    index: None (the first 8 images), an int, or a sequence of ints.
    ax:    an Axes (for one image) or an array/list of Axes (one per image);
           None makes a new figure.
    Returns the Axes for one image, else the flat array of Axes used.
    """
    if not isinstance(batch, ShapesBatch):
        raise TypeError(f"batch must be a ShapesBatch from make_shapes, got {type(batch).__name__}")
    ncols = whole_number(ncols, "ncols", 1, floats=False)
    indices = _rows(range(min(len(batch), 8)) if index is None else index, len(batch)).tolist()
    single = index is not None and _is_int(index)
    if ax is None:
        cols = min(ncols, len(indices))
        rows = math.ceil(len(indices) / cols)
        _, ax = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows), squeeze=False)
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if len(axes) < len(indices):
        raise ValueError(f"ax: got {len(axes)} axes for {len(indices)} images; pass one Axes per image")

    for a in axes[len(indices):]:
        a.axis("off")
    for a, i in zip(axes, indices):
        _show_one(a, batch, i, show_boxes)
    return axes[0] if single else axes[:len(indices)]


def _show_one(a, batch, i, show_boxes):
    """Draw image i of batch on the Axes a, titled with its class names, boxed if show_boxes."""
    from matplotlib.patches import Rectangle

    a.imshow(batch.images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
    if show_boxes:
        for (x1, y1, x2, y2), k in zip(batch.boxes[i].tolist(), batch.box_classes[i].tolist()):
            # pixel p covers [p - 0.5, p + 0.5] in imshow coordinates
            a.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1,
                                  fill=False, lw=1.5, ec=_BOX_COLOURS[k]))
            a.text(x1 - 0.5, y1 - 1, CLASSES[k], color=_BOX_COLOURS[k], fontsize=7,
                   va="bottom", bbox=dict(fc="white", alpha=0.7, pad=0.5, lw=0))
    names = [c for c, y in zip(CLASSES, batch.labels[i].tolist()) if y]
    a.set_title(f"#{i}: " + ", ".join(names), fontsize=8)
    a.set_xticks([])
    a.set_yticks([])
