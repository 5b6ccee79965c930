"""How good is a map? Two questions, several numbers. Tensors in, floats or tensors out; no plotting.

Faithfulness: does the part of the image the map keeps still make the model say the class?
Chattopadhyay et al., Grad-CAM++ (WACV 2018, arXiv 1710.11063), "objective evaluation for object
recognition": the explanation map E^c = L^c o I, Average Drop %, % Increase in Confidence, Win %.

Faithfulness by pixel order: Petsiuk, Das, Saenko, RISE (BMVC 2018, arXiv 1806.07421), "causal
metrics": the deletion curve (the score as the pixels the map ranks highest are removed first) and the
insertion curve (the score as they are added first to a baseline image), and the areas under them.

Localization: does the map lie on the object? Loc^c_I(delta) (Grad-CAM++ eq. 26); the box protocol of
CAM (Zhou et al. 2016, 20 % of the max) and Grad-CAM (Selvaraju et al., 15 %); the pointing game
(Zhang et al., ECCV 2016); mask IoU; and how much of a map falls on objects of *other* classes (the
Korean survey's complaint about Grad-CAM++).

Conventions. Maps here are at image resolution, (H, W) or (N, H, W), unless a docstring says
otherwise: upsample raw maps first with `minicam.upsample`. Boxes are (x1, y1, x2, y2) in pixels with
x2 and y2 exclusive: a box covers columns x1..x2-1 and rows y1..y2-1, area (x2 - x1) * (y2 - y1).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from .checks import (Target, check_finite, check_images, check_model, check_number, check_targets, pixel_size,
                     preserved, whole_number)
from .maps import normalize, upsample

__all__ = ["explanation_map", "target_probs", "scores_on_explanations", "confidence_drop", "average_drop",
           "increase_in_confidence", "win_percent", "gaussian_blur", "deletion_curve", "insertion_curve", "curve_auc",
           "boxes_to_mask", "loc", "box_from_map", "iou", "mask_iou", "pointing_game", "peak", "off_target",
           "paired_bootstrap"]


_MAP_FIX = ": look at the map's method and its input image"


def _check_maps(cam, name: str = "cam", batched: bool = True) -> torch.Tensor:
    """cam must be a finite, real-valued (H, W) map, or (N, H, W) maps when batched is allowed."""
    shape = ("(H, W) or (N, H, W)" if batched else "(H, W)") + " at image resolution (upsample a raw map first)"
    cam = check_finite(cam, name, _MAP_FIX, dims=(2, 3) if batched else (2,), shape=shape).detach()
    return cam if cam.is_floating_point() else cam.float()


def _check_mask(mask, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != like.shape:
        got = f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool tensor of the map's shape {tuple(like.shape)}, got {got}")
    return mask


def _one_per_image(cam, x: torch.Tensor, name: str) -> torch.Tensor:
    """cam must hold one finite real map per image of x: (N, h, w) with h, w >= 1."""
    if not isinstance(cam, torch.Tensor) or cam.dim() != 3 or len(cam) != len(x) or 0 in cam.shape[1:]:
        raise ValueError(f"{name} must hold one map per image, real-valued, shape ({len(x)}, h, w) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(cam.shape) if isinstance(cam, torch.Tensor) else type(cam).__name__}"
                         "; sum a map's colour channels first")
    return check_finite(cam, name, _MAP_FIX).detach()


# ---- faithfulness: Grad-CAM++'s explanation map and the scores on it ------------------------

def explanation_map(cam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The explanation map E^c = L^c o I of Grad-CAM++ (Chattopadhyay et al. 2018): the map L,
    upsampled bilinearly to the image and min-max normalised per map to [0, 1] (the paper multiplies
    by the *normalised* map), times the image, element-wise over every colour channel.

    So the model sees the image dimmed wherever the map is low. A constant map, all-zero included,
    normalises to zeros (see `minicam.normalize`): its E is a black image.
    cam: (N, h, w) raw maps at any resolution; x: (N, C, H, W) -> E: (N, C, H, W).
    """
    return _explanation(cam, x, "cam")


def _explanation(cam, x, name: str) -> torch.Tensor:
    """explanation_map, with the maps' argument called `name` in errors."""
    x = check_images(x)
    weights = normalize(upsample(_one_per_image(cam, x, name), x.shape[-2:])).to(x.dtype)
    return weights[:, None] * x


def target_probs(model: nn.Module, x: torch.Tensor, target: Target, prob: str = "softmax") -> torch.Tensor:
    """The probability of each image's target class, (N,): softmax over the classes (as in the
    Grad-CAM++ paper, one class per image) or, with prob="sigmoid", each class's own sigmoid (for
    multi-label models). Computed in float64, so a confident "no" does not underflow to 0. The model
    runs in eval mode under no_grad, and its mode is restored afterwards. x: (N, C, H, W).
    """
    model, x = _check_prob_args(model, x, target, prob)
    with preserved(model), torch.no_grad():
        scores = check_finite(model(x), "the model's scores", " on a finite x: look at the model", dims=(2,),
                              shape="(N, classes)").double()
    targets = check_targets(target, len(x), scores.shape[1]).to(scores.device)
    probs = scores.softmax(dim=1) if prob == "softmax" else scores.sigmoid()
    return probs.gather(1, targets[:, None])[:, 0]


def _check_prob_args(model, x, target, prob) -> tuple[nn.Module, torch.Tensor]:
    """What target_probs can check before running the model: prob, model, x, and target but its range."""
    if not isinstance(prob, str) or prob not in ("softmax", "sigmoid"):
        raise ValueError(f"prob must be 'softmax' (one class per image) or 'sigmoid' (multi-label), got {prob!r}")
    model, x = check_model(model), check_images(x)
    check_targets(target, len(x))  # type and count now; the range once the model has said how many classes
    return model, x


def scores_on_explanations(model: nn.Module, x: torch.Tensor, cams: torch.Tensor, target: Target,
                           prob: str = "softmax") -> tuple[torch.Tensor, torch.Tensor]:
    """(Y, O), each (N,): the probability of each image's target class on the image, Y, and on its
    explanation map `explanation_map(cams, x)`, O. prob: "softmax" or "sigmoid", see `target_probs`.
    target: an int for all images or one class index per image.
    """
    explained = _explanation(cams, x, "cams")  # checks cams before the model runs
    return target_probs(model, x, target, prob), target_probs(model, explained, target, prob)


def _check_probs(Y, O) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(Y, torch.Tensor) and isinstance(O, torch.Tensor)) or Y.dim() != 1 or Y.shape != O.shape \
            or len(Y) == 0:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (Y, O)]
        raise ValueError(f"Y and O must be non-empty 1-D tensors with one score per image (N,) each, got {shapes[0]} "
                         f"and {shapes[1]}")
    for name, t in (("Y", Y), ("O", O)):
        check_finite(t, name, ": pass probabilities from target_probs")
    if not bool(((Y > 0) & (Y <= 1) & (O >= 0) & (O <= 1)).all()):
        raise ValueError("scores must be positive probabilities (softmax or sigmoid outputs: 0 < Y <= 1, "
                         f"0 <= O <= 1), got Y in [{Y.min().item():.4g}, {Y.max().item():.4g}], O in "
                         f"[{O.min().item():.4g}, {O.max().item():.4g}]; pass probabilities, not logits")
    return Y.double(), O.double()


def confidence_drop(Y: torch.Tensor, O: torch.Tensor) -> torch.Tensor:
    """Per-image relative drop max(0, Y - O) / Y, the summand of Average Drop. Y, O: (N,) -> (N,)."""
    Y, O = _check_probs(Y, O)
    return (Y - O).clamp(min=0) / Y


def average_drop(Y: torch.Tensor, O: torch.Tensor) -> float:
    """Average Drop % (Grad-CAM++): (1/N) sum_i max(0, Y_i - O_i) / Y_i * 100. Lower is better:
    the explanation map keeps what the model needs. Y: scores on the images, O: on their explanation
    maps, both (N,) probabilities."""
    return 100 * confidence_drop(Y, O).mean().item()


def increase_in_confidence(Y: torch.Tensor, O: torch.Tensor) -> float:
    """% Increase in Confidence (Grad-CAM++): (1/N) sum_i 1[Y_i < O_i] * 100, the share of images whose
    explanation map alone scores higher than the whole image. Higher is better. Y, O: (N,)."""
    Y, O = _check_probs(Y, O)
    return 100 * (Y < O).double().mean().item()


def win_percent(drops_a: torch.Tensor, drops_b: torch.Tensor) -> float:
    """Win % of method a over method b (Grad-CAM++): the share of images, in percent, where a's
    confidence drop is smaller than b's. drops_a, drops_b: (N,) per-image drops of the same images,
    e.g. from `confidence_drop`.

    Ties count half to each method, so win_percent(a, b) + win_percent(b, a) = 100, as the paper's
    ImageNet numbers do (70.72 + 29.28). Ties are common: both drops are 0 whenever both explanation
    maps raise the confidence. A method against itself scores 50.
    """
    for name, t in (("drops_a", drops_a), ("drops_b", drops_b)):
        check_finite(t, name, ": a NaN drop is neither a win nor a loss; look at its scores Y and O", dims=(1,),
                     shape="1-D of per-image drops (N,)")
    if drops_a.shape != drops_b.shape or len(drops_a) == 0:
        raise ValueError(f"drops_a has {len(drops_a)} images and drops_b {len(drops_b)}; "
                         "compare the two methods on the same images, non-empty")
    wins = (drops_a < drops_b).double() + 0.5 * (drops_a == drops_b).double()
    return 100 * wins.mean().item()


# ---- faithfulness by pixel order: deletion and insertion (RISE) ------------------------------

def _sigma(sigma) -> float:
    return check_number(sigma, "sigma", "a blur width in pixels, a finite number > 0", lambda v: 0 < v < math.inf)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x blurred by a Gaussian of standard deviation `sigma` pixels, each colour channel on its own: the
    starting image of RISE's insertion curve (Petsiuk et al. 2018). The kernel is exp(-d^2 / (2 sigma^2))
    for |d| <= round(3 sigma) pixels, normalised to sum 1, run along the rows and then the columns; beyond
    the border the edge pixel repeats (as scipy.ndimage.gaussian_filter with mode="nearest", truncate=3).
    A constant image stays as it is. x: (N, C, H, W) -> (N, C, H, W) of x's dtype.
    """
    x = check_images(x)
    sigma = _sigma(sigma)
    radius = int(3 * sigma + 0.5)
    d = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-d ** 2 / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    n, c, h, w = x.shape
    flat = x.detach().reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def _baseline(x: torch.Tensor, baseline, sigma) -> torch.Tensor:
    """The image with every pixel removed: x blurred (baseline="blur") or a constant everywhere."""
    sigma = _sigma(sigma)  # checked even when unused: a wrong sigma is a mistake wherever it is passed
    if baseline == "blur":
        return gaussian_blur(x, sigma)
    if isinstance(baseline, str):
        raise ValueError(f"baseline must be 'blur' (x blurred with sigma) or a number (a constant image), "
                         f"got {baseline!r}")
    return torch.full_like(x, check_number(baseline, "baseline", "'blur' or a finite number (a constant image)"))


def _pixel_ranks(cam, x: torch.Tensor, seed: int) -> torch.Tensor:
    """(N, H*W) long: each pixel's place in the map's order, 0 for the highest value of the map upsampled
    to the image. Equal values go in the order of one seeded random permutation of the pixels (a stable
    sort of the permuted map), so the order is the same on any machine, and a region the map leaves flat
    (a ReLU's zeros) is taken in no particular direction, not top row first."""
    cam = _one_per_image(cam, x, "cam")
    cam = cam if cam.is_floating_point() else cam.double()
    up = (cam if cam.shape[1:] == x.shape[2:] else upsample(cam, x.shape[-2:])).flatten(1)
    shuffle = torch.randperm(up.shape[1], generator=torch.Generator().manual_seed(seed))
    order = shuffle[up[:, shuffle].argsort(dim=1, descending=True, stable=True)]
    places = torch.arange(order.shape[1]).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, places)


def _curve(model, x, cam, target, step, baseline, sigma, prob, batch_size, seed, insert: bool):
    """The deletion (insert=False) or insertion (insert=True) curve: (fractions (S+1,), scores (N, S+1))."""
    model, x = _check_prob_args(model, x, target, prob)
    if len(x) == 0:
        raise ValueError("x must hold at least one image (N >= 1) to draw a curve for")
    seed = whole_number(seed, "seed", 0, floats=False, want="an integer >= 0 (the order of equal map values)")
    ranks = _pixel_ranks(cam, x, seed)
    step = whole_number(step, "step", 1, floats=False, want="a whole number of pixels per step, >= 1")
    batch_size = whole_number(batch_size, "batch_size", 1, floats=False, want="a positive integer (images per pass)")
    base = _baseline(x, baseline, sigma)
    with preserved(model), torch.no_grad():
        classes = check_finite(model(x[:1]), "the model's scores", dims=(2,), shape="(N, classes)").shape[1]
    targets = check_targets(target, len(x), classes)
    n, c, h, w = x.shape
    counts = torch.arange(0, h * w + step, step).clamp(max=h * w).unique()   # pixels changed: 0, step, ..., H*W
    start, end = (base, x.detach()) if insert else (x.detach(), base)
    scores = []
    per_pass = max(1, batch_size // n)
    for chunk in counts.split(per_pass):
        changed = (ranks[None] < chunk[:, None, None]).view(len(chunk), n, 1, h, w)
        images = torch.where(changed, end, start).reshape(-1, c, h, w)
        scores.append(target_probs(model, images, targets.repeat(len(chunk)), prob).view(len(chunk), n))
    return counts.double() / (h * w), torch.cat(scores).T.contiguous()


def deletion_curve(model: nn.Module, x: torch.Tensor, cam: torch.Tensor, target: Target, step: int,
                   baseline=0.0, sigma: float = 5.0, prob: str = "softmax", batch_size: int = 256, seed: int = 0):
    """The deletion curve of RISE (Petsiuk, Das, Saenko, BMVC 2018; its "causal metrics"): the
    probability of the target class as the pixels are removed `step` at a time, the most important first.

    The order is the map's, upsampled bilinearly to the image: highest value first (a signed map's negative
    pixels go last; pass map.abs() to rank by magnitude); equal values in the order of a random permutation
    of the pixels drawn with `seed` (the same on any machine). A removed pixel takes the baseline's value in every
    colour channel: baseline=0.0 (the default, the paper's deletion) or another number is a constant image,
    baseline="blur" is x blurred by `gaussian_blur(x, sigma)`. prob: "softmax" or "sigmoid", see
    `target_probs`. A good map makes the score fall fast: a low area (`curve_auc`).

    x: (N, C, H, W); cam: (N, h, w) raw maps -> (fractions (S+1,), scores (N, S+1)), float64, where
    fractions[k] = min(k * step, H*W) / (H*W) is the share of pixels removed (0 first, 1 last).
    """
    return _curve(model, x, cam, target, step, baseline, sigma, prob, batch_size, seed, insert=False)


def insertion_curve(model: nn.Module, x: torch.Tensor, cam: torch.Tensor, target: Target, step: int,
                    baseline="blur", sigma: float = 5.0, prob: str = "softmax", batch_size: int = 256, seed: int = 0):
    """The insertion curve of RISE (Petsiuk et al. 2018): the probability of the target class as the
    pixels of x are put back into the baseline image `step` at a time, the most important first.

    The baseline is x blurred (baseline="blur", the default, the paper's insertion: `gaussian_blur(x,
    sigma)`, sigma in pixels) or a constant image (a number). Order (and seed), prob and the returned
    (fractions (S+1,), scores (N, S+1)) as in `deletion_curve`; fractions[k] is the share of pixels of x
    put back. A good map makes the score rise fast: a high area (`curve_auc`).
    """
    return _curve(model, x, cam, target, step, baseline, sigma, prob, batch_size, seed, insert=True)


def curve_auc(fractions: torch.Tensor, scores: torch.Tensor):
    """The area under a deletion or insertion curve by the trapezoid rule over the share of pixels in
    [0, 1]: sum_k (f_{k+1} - f_k) (s_k + s_{k+1}) / 2. A last step shorter than the others is weighted by
    its true width. fractions: (S,) from 0 to 1, increasing; scores: (S,) -> float, or (N, S) -> (N,)."""
    f = check_finite(fractions, "fractions", "", dims=(1,), shape="of shares of pixels from 0 to 1 (what "
                     "deletion_curve returns)").double()
    if len(f) < 2 or f[0] != 0 or f[-1] != 1 or not bool((f[1:] > f[:-1]).all()):
        raise ValueError(f"fractions must increase from 0 to 1 (shares of pixels), got {f.tolist()}")
    scores = check_finite(scores, "scores", ": look at the model", dims=(1, 2), shape=f"(S,) or (N, S), S = {len(f)}")
    if scores.shape[-1] != len(f):
        raise ValueError(f"scores must be (S,) or (N, S) with S = {len(f)} points, one per fraction, "
                         f"got {tuple(scores.shape)}")
    area = torch.trapezoid(scores.double(), f, dim=-1)
    return area.item() if area.dim() == 0 else area


# ---- localization with boxes ---------------------------------------------------------------

def _check_boxes(boxes, size) -> torch.Tensor:
    """(M, 4) or (4,) integer-valued x1, y1, x2, y2 boxes inside an image of `size` (H, W) -> (M, 4) long."""
    H, W = size
    boxes = check_finite(boxes, "boxes", ": give whole pixel coordinates", dims=(1, 2), shape="(M, 4) of x1, y1, x2, y2")
    if boxes.shape[-1] != 4 or boxes.numel() == 0 or (boxes.is_floating_point() and not bool((boxes == boxes.round()).all())):
        raise ValueError(f"boxes must be a non-empty (M, 4) tensor of whole pixel coordinates x1, y1, x2, y2 of the "
                         f"target class, got {boxes.tolist()}")
    boxes = boxes.reshape(-1, 4).long()
    x1, y1, x2, y2 = boxes.unbind(1)
    if not bool(((0 <= x1) & (x1 < x2) & (x2 <= W) & (0 <= y1) & (y1 < y2) & (y2 <= H)).all()):
        raise ValueError(f"boxes: every box needs 0 <= x1 < x2 <= {W} and 0 <= y1 < y2 <= {H} (x2, y2 exclusive) "
                         f"for a {H}x{W} map, got {boxes.tolist()}")
    return boxes


def boxes_to_mask(boxes: torch.Tensor, size) -> torch.Tensor:
    """The union of boxes (M, 4) (x1, y1, x2, y2, x2/y2 exclusive) as a bool mask of `size` (H, W)."""
    size = pixel_size(size)
    mask = torch.zeros(size, dtype=torch.bool)
    for x1, y1, x2, y2 in _check_boxes(boxes, size).tolist():
        mask[y1:y2, x1:x2] = True
    return mask


def _delta(delta) -> float:
    """A threshold on a min-max normalised map: a number in [0, 1)."""
    return check_number(delta, "delta", "a number in [0, 1) (the map is normalised to [0, 1])", lambda v: 0 <= v < 1)


def loc(cam: torch.Tensor, boxes: torch.Tensor, delta: float) -> float:
    """Loc^c_I(delta) of Grad-CAM++ (Chattopadhyay et al. 2018, eq. 26):

        Loc = Area(internal pixels) / (Area(bounding box) + Area(external pixels))

    The map is min-max normalised and thresholded at delta: pixels above delta are set to 1 and the
    rest to 0, so "non-zero" means "above delta". (Only then does delta change which pixels count,
    as the paper's different mLoc for delta = 0, 0.25, 0.5 require; delta = 0 keeps every pixel above
    the map's minimum.) Internal pixels: non-zero pixels inside the class's box(es); external: outside.
    With several boxes of the class, "inside" is their union and Area(bounding box) its area.
    Loc is 1 only when the thresholded map fills the boxes exactly; a constant map gives 0.

    cam: (H, W) at image resolution; boxes: (M, 4) of the target class; delta in [0, 1). -> float.
    """
    cam = _check_maps(cam, batched=False)
    delta = _delta(delta)
    inside = boxes_to_mask(boxes, cam.shape).to(cam.device)
    on = normalize(cam) > delta
    internal = (on & inside).sum()
    external = (on & ~inside).sum()
    return (internal / (inside.sum() + external)).item()


def box_from_map(cam: torch.Tensor, fraction: float = 0.15) -> torch.Tensor:
    """One box from a map, the weakly supervised localization protocol of CAM (Zhou et al. 2016,
    fraction 0.20) and Grad-CAM (Selvaraju et al., fraction 0.15): keep the pixels with value
    >= fraction * max of the map as given (no min-max first, so negative values never pass), and box the
    largest connected component, with 8-connectivity (diagonal neighbours connect). Of equally
    large components the first in row-major order wins.

    A map with no positive value has nothing to box: it returns the empty box (0, 0, 0, 0), whose IoU
    with any box is 0. cam: (H, W) at image resolution -> (4,) long x1, y1, x2, y2 (x2, y2 exclusive).
    """
    cam = _check_maps(cam, batched=False)
    fraction = check_number(fraction, "fraction", "a number in (0, 1] (CAM used 0.20, Grad-CAM 0.15)",
                            lambda v: 0 < v <= 1)
    peak = cam.max()
    if peak <= 0:
        return torch.zeros(4, dtype=torch.long)
    kept = (cam >= fraction * peak).cpu().numpy()
    labels, _ = ndimage.label(kept, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())[1:]  # label 0 is the background
    ys, xs = np.nonzero(labels == 1 + sizes.argmax())
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.long)


def _box_tensor(box, name: str) -> torch.Tensor:
    """box (a tensor, array or sequence of x1, y1, x2, y2) as a finite float64 tensor."""
    try:
        t = torch.as_tensor(box)
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.dtype == torch.bool:
        raise TypeError(f"{name} must be a box x1, y1, x2, y2 (a tensor of shape (4,) or (..., 4)), got "
                        f"{type(box).__name__} {box!r:.60}")
    return check_finite(t, name, ": a box has finite pixel coordinates").double()


def iou(box_a: torch.Tensor, box_b: torch.Tensor):
    """Intersection over union of x1, y1, x2, y2 boxes (x2, y2 exclusive, so area = (x2-x1)(y2-y1)).

    box_a, box_b: (4,) each -> float; or (..., 4) tensors that broadcast -> tensor of IoUs, e.g. one
    box (4,) against M boxes (M, 4) -> (M,). Two empty boxes have IoU 0, not NaN.
    """
    a, b = (_box_tensor(t, name) for t, name in ((box_a, "box_a"), (box_b, "box_b")))
    if a.dim() == 0 or b.dim() == 0 or a.shape[-1] != 4 or b.shape[-1] != 4:
        raise ValueError(f"box_a and box_b must have shape (4,) or (..., 4) holding x1, y1, x2, y2, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = torch.broadcast_tensors(a, b)

    def area(t):
        return (t[..., 2] - t[..., 0]).clamp(min=0) * (t[..., 3] - t[..., 1]).clamp(min=0)

    overlap = torch.cat([torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])], -1)
    inter = area(overlap)
    union = area(a) + area(b) - inter
    out = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))
    return out.item() if out.dim() == 0 else out


# ---- localization with masks -----------------------------------------------------------------

def mask_iou(cam: torch.Tensor, mask: torch.Tensor, delta: float):
    """IoU of the thresholded map with an object mask: pixels of the min-max normalised map above
    delta against the mask. Its mean over images is the mIoU the Korean survey mentions. A constant
    map (nothing above delta) gives 0; so does an empty mask with an empty map.

    cam: (H, W) or (N, H, W) at image resolution; mask: bool, same shape -> float or (N,) tensor.
    """
    cam = _check_maps(cam)
    mask = _check_mask(mask, cam).to(cam.device)
    delta = _delta(delta)
    on = normalize(cam) > delta
    inter = (on & mask).flatten(-2).sum(-1).double()
    union = (on | mask).flatten(-2).sum(-1).double()
    out = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))
    return out.item() if out.dim() == 0 else out


def pointing_game(cam: torch.Tensor, mask: torch.Tensor, tolerance: float = 0):
    """The pointing game (Zhang et al., ECCV 2016; Grad-CAM reports 70.58 %): a hit when the map's
    maximum lies on the object, or within `tolerance` pixels of it (Euclidean; the original protocol
    allows 15 px on ImageNet-size images, 0 = on the mask itself).

    If several pixels share the maximum, any of them on the object is a hit. A constant map (all-zero
    included) points nowhere and is a miss, as is any map against an empty mask.
    cam: (H, W) or (N, H, W) at image resolution; mask: bool, same shape -> bool or (N,) bool tensor.
    """
    cam = _check_maps(cam)
    mask = _check_mask(mask, cam)
    tolerance = check_number(tolerance, "tolerance", "a distance in pixels >= 0", lambda v: v >= 0)
    hits = []
    for c, m in zip(cam.reshape(-1, *cam.shape[-2:]).cpu(), mask.reshape(-1, *mask.shape[-2:]).cpu()):
        peak = c == c.max()
        if bool(peak.all()) or not bool(m.any()):
            hits.append(False)
            continue
        near = m if tolerance == 0 else torch.from_numpy(ndimage.distance_transform_edt(~m.numpy()) <= tolerance)
        hits.append(bool((peak & near).any()))
    return hits[0] if cam.dim() == 2 else torch.tensor(hits)


def peak(cam: torch.Tensor) -> tuple[int, int] | None:
    """(row, col) of a map's largest value (the first in row-major order), or None where the map is flat
    (constant, all-zero included): it points nowhere, as in the pointing game. cam: (H, W)."""
    cam = _check_maps(cam, batched=False)
    if bool((cam == cam.max()).all()):
        return None
    return divmod(int(cam.argmax()), cam.shape[1])


def _check_class_masks(masks, cam: torch.Tensor) -> torch.Tensor:
    """masks must be bool, one mask per class: (K, H, W) for an (H, W) cam, (N, K, H, W) for (N, H, W)."""
    single = cam.dim() == 2
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool or masks.dim() != cam.dim() + 1 \
            or masks.shape[-2:] != cam.shape[-2:] or (not single and len(masks) != len(cam)):
        raise ValueError(f"masks must be bool with one mask per class, shape {('(N, K, ' if not single else '(K, ')}"
                         f"{cam.shape[-2]}, {cam.shape[-1]}) for a cam of shape {tuple(cam.shape)}, "
                         f"got {tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__}"
                         + (f" {masks.dtype}" if isinstance(masks, torch.Tensor) else ""))
    return masks


def off_target(cam: torch.Tensor, masks: torch.Tensor, target: Target):
    """The share of a map's positive mass that lies on objects of *other* classes:

        sum over other-class pixels of relu(L) / sum over all pixels of relu(L)

    Other-class pixels belong to a class != target and not also to the target (where objects
    overlap, the pixel is the target's). Background counts as neither. This measures the Korean
    survey's claim that Grad-CAM++ also lights up objects of other classes. In [0, 1]; a map with
    no positive value has no mass to place and gives 0.0.

    cam: (H, W) at image resolution with masks (K, H, W) bool and an int target -> float;
    or cam (N, H, W), masks (N, K, H, W), target an int or (N,) -> (N,) tensor.
    """
    cam = _check_maps(cam)
    single = cam.dim() == 2
    cams = cam[None] if single else cam
    masks = _check_class_masks(masks, cam)
    masks = (masks[None] if single else masks).to(cam.device)
    targets = check_targets(target, len(cams), masks.shape[1]).to(cam.device)
    rows = torch.arange(len(cams), device=cam.device)
    own = masks[rows, targets]
    others = masks.clone()
    others[rows, targets] = False
    elsewhere = others.any(dim=1) & ~own
    mass = cams.clamp(min=0).double()
    total = mass.sum(dim=(1, 2))
    share = torch.where(total > 0, (mass * elsewhere).sum(dim=(1, 2)) / total.clamp(min=1e-300),
                        torch.zeros_like(total))
    return share[0].item() if single else share


class _Comparison(NamedTuple):
    """A paired comparison of two methods: the mean difference a - b over `pairs` (image, class)
    pairs from `images` images, its percentile interval, and the verdict the interval supports."""
    diff: float
    low: float
    high: float
    pairs: int
    images: int
    level: float

    @property
    def verdict(self) -> str:
        """'a' or 'b' (whose score is higher) when the interval excludes 0, else 'tie'."""
        return "a" if self.low > 0 else "b" if self.high < 0 else "tie"

    def __str__(self) -> str:
        return (f"{self.diff:+.3g} [{self.low:+.3g}, {self.high:+.3g}] ({self.level:.0%} interval, "
                f"{self.pairs} pairs, {self.images} images): {self.verdict}")


def paired_bootstrap(a, b, images=None, resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> _Comparison:
    """Mean of a - b over pairs, with a paired bootstrap interval that resamples images.

    a, b: (P,) a per-pair score of two methods on the same P (image, class) pairs; images: (P,) the
    image each pair belongs to (pairs of one image are correlated, so they are drawn together; None:
    every pair its own image). Each resample draws as many images as there are, with replacement, and
    takes the mean difference over their pairs; the interval is the resamples' (1 - level)/2 and
    (1 + level)/2 percentiles (Efron & Tibshirani 1993, the percentile method). Seeded: the same
    inputs give the same interval on any machine (float64 throughout).
    """
    a = check_finite(torch.as_tensor(a, dtype=torch.float64).flatten(), "a")
    b = check_finite(torch.as_tensor(b, dtype=torch.float64).flatten(), "b")
    if a.numel() != b.numel() or a.numel() == 0:
        raise ValueError(f"a and b must hold one score per pair, the same non-zero number of them, "
                         f"got {a.numel()} and {b.numel()}")
    ids = torch.arange(a.numel()) if images is None else torch.as_tensor(images).flatten()
    if ids.numel() != a.numel() or ids.is_floating_point():
        raise ValueError(f"images must give one integer image index per pair ({a.numel()}), got {tuple(ids.shape)}")
    if not (isinstance(resamples, int) and resamples >= 100) or not 0 < level < 1:
        raise ValueError(f"resamples must be an int >= 100 and level in (0, 1), got {resamples!r} and {level!r}")
    _, ids = torch.unique(ids, return_inverse=True)
    m = int(ids.max()) + 1
    sums = torch.zeros(m, dtype=torch.float64).index_add_(0, ids, a - b)
    counts = torch.zeros(m, dtype=torch.float64).index_add_(0, ids, torch.ones_like(a))
    draw = torch.randint(m, (resamples, m), generator=torch.Generator().manual_seed(seed))
    means = sums[draw].sum(1) / counts[draw].sum(1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(means, q).tolist()
    return _Comparison((a - b).mean().item(), low, high, a.numel(), m, level)
