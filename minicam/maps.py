"""Post-processing shared by every map: upsample to the image, and min-max normalise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import pixel_size

__all__ = ["upsample", "normalize"]


def _check_real_maps(maps, name: str, dims: str, ok) -> torch.Tensor:
    """maps must be a real (not complex) tensor whose number of dimensions passes `ok`."""
    if not isinstance(maps, torch.Tensor) or not ok(maps.dim()) or maps.is_complex():
        got = f"{tuple(maps.shape)} {maps.dtype}" if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise (TypeError if isinstance(maps, torch.Tensor) and maps.is_complex() else ValueError)(
            f"maps must be a real-valued tensor of shape {dims} for {name}, got {got}; pass maps.real or maps.abs() "
            "for complex maps")
    return maps


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling of raw maps (N, h, w) -> (N, H, W); `size` is an int or (H, W).

    align_corners=False, as torch's default: each map cell covers an equal block of the image.
    A single map (h, w) comes back as (H, W). Sizes are whole pixels (64 or 64.0, not 64.5).
    A constant map stays exactly constant (interpolation would add rounding noise that `normalize`
    stretches into a pattern). Non-finite values are not hidden: a NaN or inf spreads to the pixels
    interpolated from it.
    """
    _check_real_maps(maps, "upsample", "(N, h, w) or (h, w)", lambda d: d in (2, 3))
    size = pixel_size(size)
    if maps.shape[-1] == 0 or maps.shape[-2] == 0:
        raise ValueError(f"maps must have at least one pixel to upsample, got shape {tuple(maps.shape)}")
    batch = maps if maps.dim() == 3 else maps[None]
    if not batch.is_floating_point():
        batch = batch.float()  # interpolation needs floats; a float64 map stays float64
    out = F.interpolate(batch[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    low, high = batch.amin(dim=(1, 2), keepdim=True), batch.amax(dim=(1, 2), keepdim=True)
    out = torch.where(low == high, low.expand_as(out), out)  # a flat map is flat at any size
    return out if maps.dim() == 3 else out[0]


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation to [0, 1] over the last two dimensions (..., h, w).

    A constant map (all zeros included) has no range to stretch: it comes back as zeros, never NaN.
    A map holding NaN or +-inf has no finite range either: it comes back as NaN *everywhere*, so the
    fault shows in every picture and every score computed from it (it is never zeros). Other maps of
    the batch are unaffected. Bool and integer maps are normalised as floats; empty maps come back empty.
    """
    _check_real_maps(maps, "normalize", "(..., h, w)", lambda d: d >= 2)
    if not maps.is_floating_point():
        maps = maps.float()
    if maps.numel() == 0:
        return maps.clone()
    flat = maps.flatten(-2)
    low = flat.min(-1, keepdim=True).values
    span = flat.max(-1, keepdim=True).values - low
    out = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)),
                      torch.zeros_like(flat))
    broken = ~flat.isfinite().all(-1, keepdim=True)
    out = torch.where(broken, torch.full_like(out, float("nan")), out)
    return out.view_as(maps)
