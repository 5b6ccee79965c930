"""Post-processing shared by every map: upsample to the image, and min-max normalise."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling of raw maps (N, h, w) -> (N, H, W); `size` is an int or (H, W).

    align_corners=False, as torch's default: each map cell covers an equal block of the image.
    A single map (h, w) comes back as (H, W).
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() not in (2, 3):
        raise ValueError("upsample takes maps of shape (N, h, w) or (h, w), got "
                         f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2:
        raise ValueError(f"size must be an int or (H, W), got {size}")
    batch = maps if maps.dim() == 3 else maps[None]
    if not batch.is_floating_point():
        batch = batch.float()  # interpolation needs floats; a float64 map stays float64
    out = F.interpolate(batch[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return out if maps.dim() == 3 else out[0]


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation to [0, 1] over the last two dimensions (..., h, w).

    A constant map (all zeros included) has no range to stretch: it comes back as zeros, never NaN.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() < 2:
        raise ValueError("normalize takes maps of shape (..., h, w)")
    flat = maps.flatten(-2)
    low = flat.min(-1, keepdim=True).values
    span = flat.max(-1, keepdim=True).values - low
    out = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)),
                      torch.zeros_like(flat))
    return out.view_as(maps)
