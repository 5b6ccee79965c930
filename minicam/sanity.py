"""Is the explanation about the model? The sanity checks of Adebayo, Gilmer, Muelly, Goodfellow, Hardt
and Kim, "Sanity Checks for Saliency Maps" (NeurIPS 2018, arXiv 1810.03292).

The model parameter randomisation test, cascading: re-initialise the model's layers from the output back to
the input, one more at each step (the cascade), and compare each method's map with its map on the trained
model. A map that stays the same while the weights behind the decision are random cannot be showing how
the model decides. The data randomisation test: compare the maps of a model trained on labels
permuted across the images (`minicam.models.CONTROLS`) with those of the model trained on the true labels.

Maps are compared at the image's resolution, one value per pixel (`pixel_maps`): by Spearman's rank
correlation of the maps and of their absolute values (scipy.stats), and by SSIM (scikit-image) of the
min-max normalised absolute maps. A constant map has no ranks, so no rank correlation: it gives NaN and is
counted, never read as 0 or 1.

The model passed in is never modified: every randomised model is a copy (copy.deepcopy).
"""
from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import numpy as np
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from torch import nn

from .checks import check_finite, check_images, check_model, check_number, pixel_size, resolve_layer, whole_number
from .maps import normalize, upsample
from .methods import METHODS
from .metrics import paired_bootstrap

__all__ = ["cascade_layers", "randomized", "cascade", "pixel_maps", "compare_maps", "cascading_randomization",
           "compare_models", "data_randomization", "randomization_verdict"]


# ---- randomising the weights ---------------------------------------------------------------------

def cascade_layers(model: nn.Module) -> list[str]:
    """The units of the cascade, output first: the model's direct children that hold parameters, in the
    reverse of the order they were registered (for nn.Sequential, torchvision's ResNet and VGG and the
    shapes models that is the reverse of the forward order; for another model pass `layers` yourself).
    ShapesVGG: fc, conv6, ..., conv1; ShapesResNet: fc, layer4, ..., layer1, bn1, conv1."""
    children = [name for name, child in check_model(model).named_children() if any(True for _ in child.parameters())]
    if not children:
        raise ValueError("model must have direct children that hold parameters (layers with weights) to "
                         "randomise; pass layers=[...] naming them from model.named_modules()")
    return children[::-1]


def _layer_names(model: nn.Module, layers) -> list[str]:
    """layers (names from model.named_modules() or the modules) as distinct names; at least one."""
    if isinstance(layers, (str, nn.Module)) or not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"layers must be a non-empty list of layer names (or modules) of the model, output first, "
                        f"got {layers!r}")
    names = [resolve_layer(model, layer)[0] for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layers must name each layer once, got {names}")
    return names


def _reset(module: nn.Module, name: str, seed: int) -> None:
    """Every module inside `module` runs its own reset_parameters() under torch.manual_seed(seed), in a
    forked RNG (the caller's random state is left as it was)."""
    owners = [m for m in module.modules() if callable(getattr(m, "reset_parameters", None))]
    covered = {id(p) for m in owners for p in m.parameters(recurse=False)}
    params = dict(module.named_parameters())
    if not params:
        raise ValueError(f"layers: {name!r} holds no parameters to randomise; choose layers with weights, e.g. "
                         "cascade_layers(model)")
    missing = [key for key, p in params.items() if id(p) not in covered]
    if missing:
        raise ValueError(f"layers: {name!r} holds parameters {missing} that no reset_parameters() re-initialises; "
                         "choose layers built from torch.nn's layers")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for owner in owners:
            owner.reset_parameters()


def randomized(model: nn.Module, layers, seed: int = 0) -> nn.Module:
    """A copy of model (copy.deepcopy) whose `layers` are re-initialised, each by its own modules'
    reset_parameters() -- the initialisation torch gives a fresh layer -- under the seed
    seed + the layer's position in model.named_modules(). So a layer's random weights do not depend on
    which other layers are randomised with it, and the cascade's step k keeps step k-1's random layers.
    A BatchNorm layer goes back to its start: weight 1, bias 0, running mean 0, running variance 1.

    model: left exactly as it was; layers: names (or modules) of the model; seed: an int >= 0.
    """
    check_model(model)
    names = _layer_names(model, layers)
    seed = whole_number(seed, "seed", 0, floats=False, want="an integer >= 0 (torch.manual_seed's seed)")
    positions = {name: i for i, (name, _) in enumerate(model.named_modules())}
    if seed + len(positions) >= 2 ** 63:
        raise ValueError(f"seed must be an integer >= 0 below 2**63 - {len(positions)}, got {seed}")
    twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())
    for name in names:
        _reset(modules[name], name, seed + positions[name])
    return twin


def cascade(model: nn.Module, layers=None, seed: int = 0) -> list[tuple[str, nn.Module]]:
    """The cascading randomisation of Adebayo et al.: [(name, copy)], one step per layer of
    `layers` (output first; default `cascade_layers(model)`), where step k's copy has layers[0..k]
    re-initialised (see `randomized`) and every layer below them as trained. model: left as it was."""
    names = cascade_layers(model) if layers is None else _layer_names(check_model(model), layers)
    return [(name, randomized(model, names[:k + 1], seed)) for k, name in enumerate(names)]


# ---- comparing maps ---------------------------------------------------------------------------------

def pixel_maps(maps: torch.Tensor, size) -> torch.Tensor:
    """One value per pixel of the image, float64 (N, H, W): an (N, C, H, W) map (guided backprop, Guided
    Grad-CAM, LRP) summed over its colour channels (a pixel's share is the sum of its channels', as LRP's
    conservation counts it); an (N, h, w) map upsampled bilinearly to `size` (H, W), as every overlay is."""
    size = pixel_size(size)
    if not isinstance(maps, torch.Tensor):
        raise ValueError(f"maps must be real (N, h, w) or (N, C, H, W) tensors, got {type(maps).__name__}")
    maps = check_finite(maps, "maps", ": look at the map's method and its input", dims=(3, 4),
                        shape="(N, h, w) or (N, C, H, W)").detach().double()
    if maps.dim() == 4:
        if maps.shape[-2:] != size:
            raise ValueError(f"maps with channels (N, C, H, W) must be at the image's size {size}, got "
                             f"{tuple(maps.shape)}; give size as the image's (H, W)")
        return maps.sum(1)
    return maps if maps.shape[-2:] == size else upsample(maps, size)


class _Similarity(NamedTuple):
    """How alike two sets of maps are, image by image, each (N,) float64 (constant: bool): Spearman of the
    maps, Spearman of their absolute values, SSIM of the min-max normalised absolute maps, and whether
    either map of the image is constant in absolute value (its Spearman values are then NaN)."""
    spearman: torch.Tensor
    spearman_abs: torch.Tensor
    ssim: torch.Tensor
    constant: torch.Tensor


class _Prepared(NamedTuple):
    """One set of pixel maps (N, H, W) ready to compare: the ranks of each map's pixels and of their
    absolute values (scipy.stats.rankdata, ties given their mean rank), the min-max normalised |maps|, and
    which maps are constant in absolute value."""
    shape: tuple
    ranks: np.ndarray
    ranks_abs: np.ndarray
    picture: np.ndarray
    constant: np.ndarray


def _prepare(maps, size) -> _Prepared:
    m = pixel_maps(maps, size)
    flat = m.flatten(1).numpy()
    return _Prepared(tuple(m.shape), stats.rankdata(flat, axis=1), stats.rankdata(np.abs(flat), axis=1),
                     normalize(m.abs()).numpy(), np.ptp(np.abs(flat), axis=1) == 0)


def _rank_correlation(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row: the Pearson correlation of the rows' ranks, (N, P) -> (N,); NaN where a
    row's ranks are all equal (a constant map has no order)."""
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    denominator = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (ra * rb).sum(1) / safe, np.nan)


def _compare(a: _Prepared, b: _Prepared) -> _Similarity:
    if a.shape != b.shape:
        raise ValueError(f"other must hold one map per reference map, {a.shape} at the image's size, got "
                         f"{b.shape}; compare maps of the same images")
    side = min(7, *(s - 1 + s % 2 for s in a.shape[1:]))   # the largest odd window that fits, at most 7
    if side < 3:
        raise ValueError(f"size must be at least 3x3 pixels for SSIM's window, got {a.shape[1:]}")
    ssim = [structural_similarity(u, v, data_range=1.0, win_size=side) for u, v in zip(a.picture, b.picture)]
    return _Similarity(torch.from_numpy(_rank_correlation(a.ranks, b.ranks)),
                       torch.from_numpy(_rank_correlation(a.ranks_abs, b.ranks_abs)),
                       torch.tensor(ssim, dtype=torch.float64), torch.from_numpy(a.constant | b.constant))


def compare_maps(reference: torch.Tensor, other: torch.Tensor, size) -> _Similarity:
    """Reference maps against other maps of the same images, each first made `pixel_maps(., size)`.

    Spearman (Adebayo et al.'s "rank correlation (no abs)" and "(abs)"): 1 for maps that order the pixels
    alike, about 0 for unrelated maps; NaN where a map is constant (see `constant`). SSIM (Wang et al.
    2004, skimage.metrics.structural_similarity, data range 1, a 7x7 window or the largest odd one that
    fits) of the min-max normalised |maps|: 1 for the same picture. A map against itself scores 1 on all.
    reference, other: (N, h, w) or (N, C, H, W); size: the image's (H, W) -> (N,) values per image.
    """
    return _compare(_prepare(reference, size), _prepare(other, size))


# ---- the two tests ----------------------------------------------------------------------------------

class _Randomization(NamedTuple):
    """A randomisation test's record. steps: what was randomised at each step (a layer's name, or the
    control model's label); maps[method]: the pixel maps (N, H, W), the trained model's first, then one per
    step; similarity[method]: one _Similarity per step, each step's maps against the trained model's."""
    steps: list
    maps: dict
    similarity: dict


def _methods(methods) -> dict[str, Callable]:
    """methods as {name: function(model, x, target, layer)}: names of minicam.methods.METHODS, or a dict."""
    if isinstance(methods, dict) and methods and all(callable(f) for f in methods.values()):
        return dict(methods)
    if isinstance(methods, (list, tuple)) and methods and all(isinstance(m, str) for m in methods):
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods: {unknown} are not in minicam.methods.METHODS; choose from {list(METHODS)}")
        return {name: METHODS[name] for name in methods}
    raise TypeError(f"methods must be a non-empty list of names from minicam.methods.METHODS or a dict "
                    f"{{name: function(model, x, target, layer)}}, got {methods!r}")


def _maps(model, x, target, methods, layer) -> dict[str, torch.Tensor]:
    return {name: pixel_maps(method(model, x, target, layer), x.shape[-2:]) for name, method in methods.items()}


def _record(model, models, x, target, methods, layer) -> _Randomization:
    """Each method's maps on `model` and on every (label, other model) of `models`, compared."""
    x = check_images(x)
    methods = _methods(methods)
    first = _maps(model, x, target, methods, layer)
    prepared = {name: _prepare(m, x.shape[-2:]) for name, m in first.items()}   # ranked once, used at every step
    maps = {name: [m] for name, m in first.items()}
    similarity = {name: [] for name in methods}
    for _, other in models:
        for name, m in _maps(other, x, target, methods, layer).items():
            maps[name].append(m)
            similarity[name].append(_compare(prepared[name], _prepare(m, x.shape[-2:])))
    return _Randomization([label for label, _ in models], maps, similarity)


def cascading_randomization(model: nn.Module, x: torch.Tensor, target, methods, layer=None, layers=None,
                            seed: int = 0) -> _Randomization:
    """The model parameter randomisation test of Adebayo et al., cascading: every method's maps
    on the trained model and at every step of `cascade(model, layers, seed)`, compared with
    `compare_maps`. methods: names of minicam.methods.METHODS (or {name: function(model, x, target,
    layer)}), each called with `layer` (methods of the input ignore it). model: left as it was.
    x: (N, C, H, W); target: one class per image. -> steps (layer names, output first), maps, similarity.
    """
    return _record(check_model(model), cascade(model, layers, seed), x, target, methods, layer)


def compare_models(model: nn.Module, others: dict, x: torch.Tensor, target, methods, layer=None) -> _Randomization:
    """Every method's maps on `model` and on each model of `others` ({label: model}, e.g. a fully
    randomised copy from `randomized`, or a control), compared with `compare_maps`; the same target
    classes for all. -> steps (the labels, in order), maps, similarity. The models are left as they were."""
    check_model(model)
    if not isinstance(others, dict) or not others or not all(isinstance(m, nn.Module) for m in others.values()):
        raise TypeError(f"others must be a non-empty dict {{label: model}} of torch.nn.Modules to compare with, got "
                        f"{others!r:.80}")
    return _record(model, list(others.items()), x, target, methods, layer)


def data_randomization(model: nn.Module, control: nn.Module, x: torch.Tensor, target, methods,
                       layer=None) -> _Randomization:
    """The data randomisation test of Adebayo et al.: every method's maps on `model` and on `control`, the
    same architecture trained on permuted labels (minicam.models.CONTROLS), compared with `compare_maps`;
    the same target classes for both. -> steps ["control"], maps, similarity."""
    check_model(model)
    if not isinstance(control, nn.Module):
        raise TypeError(f"control must be a torch.nn.Module, the model trained on permuted labels, got "
                        f"{type(control).__name__}; load it with minicam.models.load_pretrained")
    return compare_models(model, {"control": control}, x, target, methods, layer)


class _Verdict(NamedTuple):
    """Mean |rho| over the images with a defined rho, its 95 % bootstrap interval (resampling images),
    how many images were used and how many had a constant map, and the verdict against the threshold."""
    mean: float
    low: float
    high: float
    used: int
    constant: int
    threshold: float
    verdict: str

    def __str__(self) -> str:
        return (f"mean |rho| {self.mean:.2f} [{self.low:.2f}, {self.high:.2f}] ({self.used} images"
                f"{f', {self.constant} constant' if self.constant else ''}): {self.verdict}")


def randomization_verdict(rho: torch.Tensor, images=None, threshold: float = 0.5) -> _Verdict:
    """Does a map change when the model (or its training labels) is randomised? rho: (N,) Spearman
    values of the randomised maps against the trained model's (NaN for constant maps: left out and
    counted); images: the image of each value (default: one each). The mean of |rho| gets a 95 % paired
    bootstrap interval (`minicam.metrics.paired_bootstrap`, seed 0): "passes" when the whole interval lies
    at or below `threshold` (the maps are far from the originals), "fails" when it lies above, "unclear"
    when it straddles the threshold, "no ranks" when every map was constant."""
    if not isinstance(rho, torch.Tensor) or rho.dim() != 1 or len(rho) == 0 or rho.is_complex() \
            or bool((rho.double().abs() > 1).any()):
        raise ValueError(f"rho must be a non-empty 1-D tensor of Spearman values (N,) in [-1, 1] (NaN for a constant "
                         f"map), got {rho!r:.80}")
    rho = rho.double()
    threshold = check_number(threshold, "threshold", "a number in (0, 1) for mean |rho|", lambda v: 0 < v < 1)
    ids = torch.arange(len(rho)) if images is None else torch.as_tensor(images)
    if ids.shape != rho.shape or ids.is_floating_point():
        raise ValueError(f"images must give one integer image index per value ({len(rho)}), got {tuple(ids.shape)}")
    defined = ~rho.isnan()
    constant = int((~defined).sum())
    if not bool(defined.any()):
        return _Verdict(float("nan"), float("nan"), float("nan"), 0, constant, threshold, "no ranks")
    values = rho[defined].abs()
    result = paired_bootstrap(values, torch.zeros_like(values), images=ids[defined])
    verdict = "passes" if result.high <= threshold else "fails" if result.low > threshold else "unclear"
    return _Verdict(result.diff, result.low, result.high, int(defined.sum()), constant, threshold, verdict)
