"""Plotting at the edge: tensors in, matplotlib axes out. Nothing here computes a map."""
from __future__ import annotations

import numbers

import matplotlib.pyplot as plt
import torch

from .maps import normalize, upsample


def check_map(value, name: str, dims=(2,), want: str = "(h, w)") -> torch.Tensor:
    """value if it is a real, finite, non-empty tensor with one of `dims` dimensions, else an error
    naming `name` and what would be right: a picture of NaN or inf would be a silent blank."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {want}, got {type(value).__name__}")
    if value.dim() not in dims or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor {want}, got shape {tuple(value.shape)}")
    if value.is_complex():
        raise TypeError(f"{name} must hold real numbers {want}, got dtype {value.dtype}")
    if not torch.isfinite(value.detach().float()).all():
        raise ValueError(f"{name} must be finite: it holds NaN or inf; check the map's computation "
                         "(a picture of it would be blank there)")
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
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1] (the map's opacity), got {alpha!r}")
    ax = ax if ax is not None else plt.gca()
    heat = normalize(upsample(raw.detach().float(), image.shape[-2:]))
    ax.imshow(rgb)
    im = ax.imshow(heat.cpu().numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    return _finish(ax, im, title, colorbar)
