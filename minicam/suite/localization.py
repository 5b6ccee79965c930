"""Where a map's maximum falls, for the notebooks' localisation tables (derived in the appendix notebook
A1_pointing_per_class, sections 2 and 3).

``snap`` makes the pointing game's maximum the same on every CPU; ``where_is_max`` says how far from the nearest
object's centre a map's maximum lies, and how much of the circle through it the object fills.
"""
from __future__ import annotations

import torch

# Notebook helpers, imported by name by the notebooks that use them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []


def snap(maps: torch.Tensor, rel: float = 1e-5) -> torch.Tensor:
    """maps (N, H, W): values within ``rel`` of each map's range below its maximum become the maximum.

    Bilinear upsampling repeats a border cell over a plateau of (near-)equal pixels; snapped, the plateau is
    one maximum on every CPU, and the pointing game counts it a hit if any of its pixels is on the object."""
    top, low = maps.amax(dim=(-2, -1), keepdim=True), maps.amin(dim=(-2, -1), keepdim=True)
    return torch.where(maps >= top - rel * (top - low), top, maps)


def where_is_max(m: torch.Tensor, mask: torch.Tensor, boxes) -> tuple[float, float]:
    """m (H, W) a map, mask (H, W) the class's pixels, boxes [(x1, y1, x2, y2), ...] its objects.

    Returns the distance of the map's maximum from the nearest object's centre (in that object's radii: 1 is
    its farthest pixel) and the object's share of the one-pixel-wide circle around its centre through the
    maximum (1: the maximum sits inside a solid disc of the object, small: on a thin arm or outside)."""
    h, w = mask.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(float(h)), torch.arange(float(w)), indexing="ij")
    row, col = divmod(int(m.argmax()), m.shape[-1])
    x1, y1, x2, y2 = min(boxes, key=lambda b: (row - (b[1] + b[3]) / 2) ** 2 + (col - (b[0] + b[2]) / 2) ** 2)
    obj = torch.zeros_like(mask)
    obj[y1:y2, x1:x2] = mask[y1:y2, x1:x2]                # this object's pixels
    cy, cx = obj.nonzero().double().mean(dim=0).tolist()
    from_centre = ((rows - cy) ** 2 + (cols - cx) ** 2).sqrt()
    d = from_centre[row, col].item()
    return d / from_centre[obj].max().item(), obj[(from_centre - d).abs() <= 0.5].float().mean().item()
