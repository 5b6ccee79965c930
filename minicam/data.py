"""Shapes world: synthetic images whose ground truth is known to the pixel.

Every image holds 1-4 coloured shapes (circles, squares, triangles, crosses)
on a smooth, noisy background, plus a few thin lines and dots that belong to
no class. Because we draw the shapes ourselves we know exactly which pixels
show which class, so an explanation map can be *checked* instead of admired.

Shapes are tilted by at most 20 degrees (a triangle points up), which keeps
the task learnable by a small CNN in a few CPU minutes.

Shapes are rasterised analytically on a coordinate grid (no drawing library),
and all randomness comes from ``numpy.random.default_rng(seed)``, so the same
seed gives the same images on any machine.

Seeds: the shipped models were trained on seeds 0, 1, 2, ... (one per epoch,
see ``minicam.apps.train``); held-out evaluation uses seeds from 1000 on.

The biased variant adds a spurious cue -- a white 5x5 patch near the top-left
corner -- whose presence is tied to ``CUE_CLASS``. A model trained on it can
take the shortcut, and an explanation map should then light up the corner.
"""
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .checks import whole_number

__all__ = ["CLASSES", "CUE_CLASS", "BIASES", "ShapesBatch", "ShapesDataset", "make_shapes", "cue_mask"]

CLASSES = ("circle", "square", "triangle", "cross")
CUE_CLASS = "circle"
BIASES = (None, "train", "flip", "random")

_CUE = (2, 2, 7, 7)   # x1, y1, x2, y2 (exclusive) of the cue patch
_CORNER = 10          # shapes and distractors keep out of the top-left 10x10
_R_MIN, _R_MAX = 6.0, 13.0  # shape radius: 12-26 px across
_TILT = math.radians(20)   # shapes are rotated by at most this much


@dataclass
class ShapesBatch:
    """A batch of shape images with their ground truth.

    images:      (N, 3, H, W) float32 in [0, 1]
    labels:      (N, K) float32 multi-hot, K = len(CLASSES)
    masks:       (N, K, H, W) bool, visible pixels of each class
    boxes:       list of N long tensors (M, 4): x1, y1, x2, y2, x2/y2 exclusive,
                 the tight box of each object's visible pixels
    box_classes: list of N long tensors (M,): class index of each box
    cue:         (N,) bool, whether the spurious cue patch is drawn
    """
    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    boxes: list
    box_classes: list
    cue: torch.Tensor

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        """The sub-batch at index (an int, a slice, a bool mask (N,) or an index list/tensor)."""
        keep = _rows(index, len(self))
        return ShapesBatch(self.images[keep], self.labels[keep], self.masks[keep],
                           [self.boxes[i] for i in keep.tolist()],
                           [self.box_classes[i] for i in keep.tolist()], self.cue[keep])


def _is_int(index) -> bool:
    """Whether index is one integer (an int, a numpy integer or a 0-dim integer tensor), not a bool."""
    if isinstance(index, (bool, np.bool_)) or getattr(index, "ndim", 0) != 0 \
            or getattr(index, "dtype", None) in (torch.bool, np.bool_):
        return False
    try:
        operator.index(index)
    except TypeError:
        return False
    return True


def _rows(index, n: int) -> torch.Tensor:
    """The rows 0..n-1 that `index` picks, as a 1-D long tensor; an int picks one row."""
    want = (f"index must be an int in -{n}..{n - 1}, a slice, a bool mask of shape ({n},) or a list/"
            f"tensor of such ints")
    if _is_int(index):  # ints, numpy integers and 0-dim integer tensors pick one row
        index = [operator.index(index)]
    elif isinstance(index, (list, tuple, range)):
        items = list(index)
        if items and all(isinstance(v, (bool, np.bool_)) for v in items):
            index = torch.tensor(items, dtype=torch.bool)
        elif all(_is_int(v) for v in items):
            index = torch.tensor([operator.index(v) for v in items], dtype=torch.long)
        else:
            raise TypeError(f"{want}; got {index!r}")
    elif isinstance(index, np.ndarray):
        index = torch.as_tensor(index)
    elif not isinstance(index, (slice, torch.Tensor)):
        raise TypeError(f"{want}; got {type(index).__name__} {index!r}")
    try:
        keep = torch.arange(n)[index]
    except (IndexError, TypeError, ValueError) as err:
        raise type(err)(f"{want}; got {index!r} ({err})") from None
    if keep.dim() != 1:
        raise IndexError(f"{want}; got an index of shape {tuple(keep.shape)}")
    return keep


def cue_mask(size=64):
    """(H, W) bool mask of the spurious cue patch in a size x size image."""
    size = whole_number(size, "size", _CUE[2], want=f"an integer >= {_CUE[2]} (the patch ends at pixel {_CUE[2]})")
    mask = torch.zeros(size, size, dtype=torch.bool)
    x1, y1, x2, y2 = _CUE
    mask[y1:y2, x1:x2] = True
    return mask


def _shape(kind, xx, yy, cx, cy, r, angle):
    """(H, W) bool pixels of one shape, centred at (cx, cy), inside radius r."""
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s      # coordinates in the shape's frame
    v = -(xx - cx) * s + (yy - cy) * c
    if kind == 0:                          # circle
        return u * u + v * v <= r * r
    if kind == 1:                          # square, half-diagonal 0.99 r
        return (u.abs() <= 0.7 * r) & (v.abs() <= 0.7 * r)
    if kind == 2:                          # equilateral triangle, circumradius r
        inside = torch.ones_like(u, dtype=torch.bool)
        for k in range(3):
            t = math.pi / 2 + 2 * math.pi * k / 3   # outward normal of one edge
            inside &= u * math.cos(t) + v * math.sin(t) <= r / 2
        return inside
    w, a = 0.3 * r, 0.95 * r               # cross: two bars, corners within r
    return ((u.abs() <= w) & (v.abs() <= a)) | ((v.abs() <= w) & (u.abs() <= a))


def _distractor(rng, xx, yy, size):
    """(H, W) bool pixels of a thin line or a small dot (no class)."""
    x0, y0 = rng.uniform(_CORNER, size - 2, 2)
    if rng.random() < 0.5:                 # dot, 2-4 px across
        return (xx - x0) ** 2 + (yy - y0) ** 2 <= rng.uniform(1.0, 2.0) ** 2
    length, angle = rng.uniform(8, 30), rng.uniform(0, math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    t = ((xx - x0) * dx + (yy - y0) * dy).clamp(0, length)  # nearest point on segment
    return (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2 <= 0.6 ** 2


def _contrasting_colour(rng, background):
    """An RGB colour at least 0.5 (Euclidean) away from the background colour."""
    for _ in range(100):
        colour = rng.random(3)
        if np.linalg.norm(colour - background) >= 0.5:
            return colour
    return np.where(background < 0.5, background + 0.45, background - 0.45)


def _paint(image, pix, colour):
    """image (3, H, W) with the pixels of pix (H, W) set to an RGB colour."""
    return torch.where(pix, torch.tensor(colour, dtype=torch.float32)[:, None, None], image)


def _place(rng, placed, size):
    """A (cx, cy, r) that keeps off the cue corner and mostly off other shapes, or None."""
    r = rng.uniform(_R_MIN, _R_MAX)
    for _ in range(20 if placed else 1000):  # the first shape must always fit
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        if cx - r < _CORNER and cy - r < _CORNER:
            continue
        # 0.85 lets neighbours touch a little, so occlusion happens but stays small
        if all(math.hypot(cx - px, cy - py) >= 0.85 * (r + pr) for px, py, pr in placed):
            return cx, cy, r
    return None


def _place_anyway(rng, size):
    """A (cx, cy, r) that surely keeps off the cue corner, for when _place found no room for any shape.

    Only small images (size < 37) can get here; every image that _place fills is drawn as before.
    """
    r = rng.uniform(_R_MIN, min(_R_MAX, (size - _CORNER - 1) / 2))
    clear = rng.uniform(r + _CORNER, size - r - 1)   # this coordinate keeps the shape off the corner
    other = rng.uniform(r + 1, size - r - 1)
    return (clear, other, r) if rng.random() < 0.5 else (other, clear, r)


def _background(rng, size, xx, yy):
    """A background (3, H, W): a random base colour + a linear ramp, with distractors; and the base."""
    base = rng.uniform(0.15, 0.6, 3)
    theta, amp = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.25)
    ramp = ((xx - size / 2) * math.cos(theta) + (yy - size / 2) * math.sin(theta)) / size * amp
    image = torch.tensor(base, dtype=torch.float32)[:, None, None] + ramp
    for _ in range(rng.integers(0, 4)):    # distractors go under the shapes
        image = _paint(image, _distractor(rng, xx, yy, size), _contrasting_colour(rng, base))
    return image, base


def _draw(rng, image, spot, xx, yy, base):
    """image with one shape of a random class painted at spot (cx, cy, r); and its class and pixels."""
    kind = int(rng.integers(len(CLASSES)))
    # small tilts only: upright shapes are learnable in a few CPU minutes
    pix = _shape(kind, xx, yy, *spot, angle=rng.uniform(-_TILT, _TILT))
    return _paint(image, pix, _contrasting_colour(rng, base)), kind, pix


def _draw_shapes(rng, image, size, xx, yy, base):
    """image with 1-4 shapes painted on it; their classes [M] and pixels [M x (H, W)], in drawing order."""
    placed, kinds, shapes = [], [], []
    for _ in range(rng.integers(1, 5)):
        spot = _place(rng, placed, size)
        if spot is None:
            continue
        image, kind, pix = _draw(rng, image, spot, xx, yy, base)
        placed.append(spot)
        kinds.append(kind)
        shapes.append(pix)
    if not shapes:  # no room found (small images only): one shape that surely fits
        image, kind, pix = _draw(rng, image, _place_anyway(rng, size), xx, yy, base)
        kinds.append(kind)
        shapes.append(pix)
    return image, kinds, shapes


def _visible(shapes, kinds):
    """Visible pixels (M, H, W) and classes (M,) of the objects still in sight: later shapes occlude
    earlier ones, and an object hidden entirely is dropped."""
    visible = torch.stack(shapes)
    for i in range(len(shapes) - 1):
        visible[i] &= ~visible[i + 1:].any(0)
    keep = visible.flatten(1).any(1)
    return visible[keep], torch.tensor(kinds)[keep]


def _make_one(rng, size, xx, yy, bias):
    """One image (3, H, W), its object masks (M, H, W), object classes (M,) and cue flag."""
    image, base = _background(rng, size, xx, yy)
    image, kinds, shapes = _draw_shapes(rng, image, size, xx, yy, base)
    noise = torch.from_numpy(rng.normal(0, 0.03, (3, size, size))).float()
    image = (image + noise).clamp(0, 1)
    visible, kinds = _visible(shapes, kinds)

    has_cue_class = bool((kinds == CLASSES.index(CUE_CLASS)).any())
    coin = bool(rng.random() < 0.5)  # drawn for every bias: all variants of a seed show the same shapes
    cue = {None: False, "train": has_cue_class, "flip": not has_cue_class, "random": coin}[bias]
    if cue:
        x1, y1, x2, y2 = _CUE
        image[:, y1:y2, x1:x2] = 0.97
    return image, visible, kinds, cue


def _tight_box(pix):
    """x1, y1, x2, y2 (exclusive) of the True pixels of an (H, W) bool mask."""
    ys, xs = torch.nonzero(pix, as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def _check_shapes_args(n, seed, size, bias):
    """make_shapes's n, seed and size as ints, or an error naming the argument."""
    n = whole_number(n, "n", 1, want="a positive integer (the number of images)")
    seed = whole_number(seed, "seed", 0, floats=False,
                  want="a non-negative integer (the same seed gives the same images)")
    size = whole_number(size, "size", 32, want="an integer >= 32 so shapes of 12-26 px fit")
    if not (bias is None or isinstance(bias, str)) or bias not in BIASES:
        raise ValueError(f"bias must be one of {BIASES}, got {bias!r}")
    return n, seed, size


def make_shapes(n, seed, size=64, bias=None):
    """Generate n shape images deterministically from ``seed``.

    n: a positive int; seed: a non-negative int; size: an int >= 32 (numpy integers and whole
    floats such as 64.0 count as ints). Every seed works at every size: in a small image where no
    shape finds room off the cue corner, one shape is placed where it surely fits.
    bias: None (no cue), "train" (cue iff CUE_CLASS present), "flip" (cue iff
    CUE_CLASS absent) or "random" (cue with probability 1/2).
    Returns a ShapesBatch; images are (n, 3, size, size).
    """
    n, seed, size = _check_shapes_args(n, seed, size, bias)
    rng = np.random.default_rng(seed)
    coords = torch.arange(size, dtype=torch.float32) + 0.5   # pixel centres
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    K = len(CLASSES)
    images = torch.empty(n, 3, size, size)
    masks = torch.zeros(n, K, size, size, dtype=torch.bool)
    boxes, box_classes, cues = [], [], []
    for i in range(n):
        images[i], visible, kinds, cue = _make_one(rng, size, xx, yy, bias)
        for pix, k in zip(visible, kinds):
            masks[i, k] |= pix
        boxes.append(torch.stack([_tight_box(pix) for pix in visible]))
        box_classes.append(kinds)
        cues.append(cue)
    labels = masks.flatten(2).any(2).float()
    return ShapesBatch(images, labels, masks, boxes, box_classes, torch.tensor(cues))


class ShapesDataset(Dataset):
    """Dataset of (image (3, H, W), labels (K,)) pairs, generated once by make_shapes.

    The full ground truth stays available as ``dataset.batch``.
    """

    def __init__(self, n, seed, size=64, bias=None):
        self.batch = make_shapes(n, seed, size=size, bias=bias)

    def __len__(self):
        return len(self.batch)

    def __getitem__(self, i):
        i = whole_number(i, "i", floats=False)
        if not -len(self) <= i < len(self):
            raise IndexError(f"i must be an image index in -{len(self)}..{len(self) - 1}, got {i}")
        return self.batch.images[i], self.batch.labels[i]
