"""Claims taught in notebook 07 (Relevance-CAM): Relevance-CAM (the survey's start) against Grad-CAM at each
ReLU of the shapes VGG and over its shallow layers together, and the survey's contrastive start against the
authors' at relu4; all on the pointing game (hit %) over the sample "held-100".

The maps of all six layers come from one forward pass and one backward pass (Grad-CAM) and one LRP walk
(Relevance-CAM), stopped at each layer on the way down: the same numbers as ``minicam.gradcam`` and
``minicam.relevance_cam`` called layer by layer (notebook 07 checks it), with one pass instead of six.
"""
from __future__ import annotations

from functools import lru_cache

import torch

import minicam
from minicam.lrp import _forward, contrastive_start, plan, walk
from minicam.metrics import pointing_game
from minicam.models import load_pretrained
from minicam.suite.localization import snap

from . import paired_claim, sample

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

MODEL = "shapes_vgg"
LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5", "relu6")
# The suite's one definition of "shallow" for the shapes VGG: the ReLUs before its second max-pool (64x64 and
# 32x32 maps; relu4-relu6, 16x16, are the last conv block). Every notebook that groups layers uses this.
SHALLOW = ("relu1", "relu2", "relu3")
METRIC = "pointing game (hit %)"


@lru_cache(maxsize=None)
def _model():
    return load_pretrained(MODEL)


def gradcams(model, x: torch.Tensor, targets: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Grad-CAM (Selvaraju et al., eqs. 1-2) at several layers: {layer: (N, h, w)}, from one forward pass and one
    backward pass of sum_n y^{c_n}_n (each image's score depends on that image only, so each row's gradient is
    its own dy^c/dA)."""
    acts = {}
    hooks = [model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out, layer=layer: acts.__setitem__(layer, out)) for layer in layers]
    try:
        with torch.enable_grad():
            scores = model(x)
            grads = torch.autograd.grad(scores.gather(1, targets[:, None]).sum(), [acts[layer] for layer in layers])
    finally:
        for hook in hooks:
            hook.remove()
    return {layer: minicam.weighted_sum(g.mean(dim=(2, 3)), acts[layer].detach()) for layer, g in zip(layers, grads)}


def relevance_cams(model, x: torch.Tensor, targets: torch.Tensor, layers, start: str = "survey") -> dict[str, torch.Tensor]:
    """Relevance-CAM (Lee et al., CVPR 2021) at several layers, minicam's defaults (z+, contrastive start):
    {layer: (N, h, w)} = sum_k mean_ij(R^k_ij) A^k, no ReLU, from one forward pass and one LRP walk."""
    steps = plan(model, "zplus", "zb")
    with torch.no_grad():
        scores, records = _forward(steps, x)
    out = {}
    for (step, R), record in zip(walk(steps, records, contrastive_start(scores, targets, start)), reversed(records)):
        for layer in set(step.outputs) & set(layers):
            out[layer] = minicam.weighted_sum(R.mean(dim=(2, 3)), record.output, relu=False)
        if len(out) == len(layers):
            break                                  # the walk is lazy: nothing below the shallowest layer runs
    return out


@lru_cache(maxsize=None)
def depth_maps() -> dict[str, dict[str, torch.Tensor]]:
    """{"Grad-CAM" / "Relevance-CAM": {layer: (193, h, w)}}: every (image, present class) pair of held-100."""
    held, images, classes = sample("held-100")
    x = held.images[images]
    return {"Grad-CAM": gradcams(_model(), x, classes, LAYERS),
            "Relevance-CAM": relevance_cams(_model(), x, classes, LAYERS)}


@lru_cache(maxsize=None)
def authors_relu4() -> torch.Tensor:
    """(193, 16, 16): Relevance-CAM at relu4 with the authors' start (-1/C at the other classes), held-100's pairs."""
    held, images, classes = sample("held-100")
    return relevance_cams(_model(), held.images[images], classes, ["relu4"], start="authors")["relu4"]


def hits_of(maps: torch.Tensor) -> torch.Tensor:
    """(193,) 100 * hit of the pointing game (strict) of raw maps of held-100's pairs, upsampled and snapped."""
    held, images, classes = sample("held-100")
    return 100 * pointing_game(snap(minicam.upsample(maps, held.images.shape[-1])), held.masks[images, classes]).double()


@lru_cache(maxsize=None)
def hits(method: str, layer: str) -> torch.Tensor:
    """(193,) the pointing-game hits (0 or 100) of "Grad-CAM" or "Relevance-CAM" at a layer."""
    return hits_of(depth_maps()[method][layer])


def _depth_claim(layer: str):
    @paired_claim(f"07.depth.{MODEL}.{layer}", question=f"Does Relevance-CAM point at the object more often than "
                  f"Grad-CAM at {layer} of the shapes VGG?", metric=METRIC, a="Relevance-CAM", b="Grad-CAM",
                  model=MODEL, layer=layer, sample="held-100", taught_in="07_relevance_cam", better="higher")
    def _():
        return hits("Relevance-CAM", layer), hits("Grad-CAM", layer), sample("held-100")[1]


for _layer in LAYERS:
    _depth_claim(_layer)


@paired_claim(f"07.depth.{MODEL}.shallow", question="Over the shallow layers relu1-relu3 of the shapes VGG together "
              "(each pair once per layer), does Relevance-CAM point at the object more often than Grad-CAM?",
              metric=METRIC, a="Relevance-CAM", b="Grad-CAM", model=MODEL, layer="relu1-relu3", sample="held-100",
              taught_in="07_relevance_cam", better="higher")
def _():
    images = sample("held-100")[1]
    return (torch.cat([hits("Relevance-CAM", layer) for layer in SHALLOW]),
            torch.cat([hits("Grad-CAM", layer) for layer in SHALLOW]), images.repeat(len(SHALLOW)))


@paired_claim(f"07.start.{MODEL}.relu4", question="Does Relevance-CAM's pointing game at relu4 depend on the "
              "contrastive start: the survey's -1/(C-1) against the authors' code's -1/C?", metric=METRIC,
              a="survey start", b="authors' start", model=MODEL, layer="relu4", sample="held-100",
              taught_in="07_relevance_cam", better="higher")
def _():
    return hits("Relevance-CAM", "relu4"), hits_of(authors_relu4()), sample("held-100")[1]
