"""Claims taught in notebook 08a (evaluation on shapes world; ids keep notebook 08's prefix): Grad-CAM++ against
Grad-CAM on the faithfulness numbers of Chattopadhyay et al. (Average Drop, % Increase in Confidence, Win %) and on
Loc(delta); CAM and Relevance-CAM against Grad-CAM++; and the off-target share of other classes' objects.


Samples: "held-120" (every (image, present class) pair of make_shapes(120, seed=1000): 233 pairs) for every claim on
all pairs, and "held-120-multi" (its pairs from images with at least two classes: 192 pairs from 79 images) for the
off-target claims. Probabilities are sigmoids (the shapes models are multi-label). Maps are memoised per process,
so the notebook and its claims compute each map once.
"""
from __future__ import annotations

from functools import lru_cache

import torch

import minicam
from minicam import metrics
from minicam.data import make_shapes
from minicam.gradients import gradcampp_weights, weighted_sum
from minicam.hooks import per_image
from minicam.lrp import relevance_cam
from minicam.models import load_pretrained

from . import paired_claim, register_sample, sample
from .samples import every_pair

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

MODELS = {"vgg": ("shapes_vgg", "relu6"), "resnet": ("shapes_resnet", "layer4")}
RC = "Relevance-CAM (survey start)"
METHODS = {
    "CAM": lambda model, x, target, layer: minicam.cam(model, x, target, layer, "fc"),
    "Grad-CAM": minicam.gradcam,
    "Grad-CAM++": minicam.gradcam_pp,
    RC: lambda model, x, target, layer: relevance_cam(model, x, target, layer, start="survey"),
}
SLUG = {"CAM": "cam", "Grad-CAM": "gradcam", "Grad-CAM++": "gradcampp", RC: "relevance-cam"}
DELTAS = {"0": 0.0, "025": 0.25, "05": 0.5}


@register_sample("held-120", "make_shapes(120, seed=1000): 120 held-out images, every (image, present class) pair "
                             "(233 pairs)")
def held_120():
    return every_pair(120)


@register_sample("held-120-multi", "the pairs of held-120 whose image holds at least two classes (192 pairs from "
                                   "79 images)")
def held_120_multi():
    held, images, classes = sample("held-120")
    keep = held.labels[images].sum(1) >= 2
    return held, images[keep], classes[keep]


@lru_cache(maxsize=None)
def model(key: str):
    return load_pretrained(MODELS[key][0])


def _pairs(multi: bool):
    return sample("held-120-multi" if multi else "held-120")


def raw_maps(name: str, key: str = "vgg", layer: str | None = None, multi: bool = False) -> torch.Tensor:
    """(P, h, w): one method's raw map of every pair of held-120 (or of held-120-multi), at `layer`
    (default: the model's last block, relu6 or layer4)."""
    return _raw_maps(name, key, layer or MODELS[key][1], bool(multi))


@lru_cache(maxsize=None)
def _raw_maps(name: str, key: str, layer: str, multi: bool) -> torch.Tensor:
    # memoised with every argument given, so that each call form finds the same entry
    if multi and layer == MODELS[key][1]:       # the multi-class pairs' rows of the maps of every pair
        held, images, classes = _pairs(False)
        return raw_maps(name, key)[held.labels[images].sum(1) >= 2]
    held, images, classes = _pairs(multi)
    if name in ("Grad-CAM", "Grad-CAM++"):      # the two from one capture: minicam.gradcam's and gradcam_pp's steps
        cap = _capture(key, layer, multi)
        if name == "Grad-CAM":
            return per_image(torch.einsum("nk,nkhw->nhw", cap.grads.mean(dim=(2, 3)), cap.acts).clamp(min=0), classes)
        return per_image(weighted_sum(gradcampp_weights(cap.acts, cap.grads), cap.acts), classes)
    return METHODS[name](model(key), held.images[images], classes, layer)


@lru_cache(maxsize=None)
def _capture(key: str, layer: str, multi: bool):
    held, images, classes = _pairs(multi)
    return minicam.capture(model(key), held.images[images], classes, layer)


def scores(name: str, key: str = "vgg"):
    """(Y, O): the class's sigmoid probability on each pair's image and on its explanation map E = L o I."""
    return _scores(name, key)


@lru_cache(maxsize=None)
def _probs(key: str) -> torch.Tensor:
    held, images, classes = _pairs(False)
    return metrics.target_probs(model(key), held.images[images], classes, "sigmoid")


@lru_cache(maxsize=None)
def _scores(name: str, key: str):
    # metrics.scores_on_explanations, with Y (the same for every method) computed once per model
    held, images, classes = _pairs(False)
    explained = metrics.explanation_map(raw_maps(name, key), held.images[images])
    return _probs(key), metrics.target_probs(model(key), explained, classes, "sigmoid")


def drops(name: str, key: str = "vgg") -> torch.Tensor:
    """(P,) 100 x the confidence drop max(0, Y - O) / Y of each pair, sigmoid probabilities (Average Drop %'s terms)."""
    return 100 * metrics.confidence_drop(*scores(name, key))


def increases(name: str, key: str = "vgg") -> torch.Tensor:
    """(P,) 100 where the probability on E = L o I is above the one on the image, else 0 (% Increase's terms)."""
    Y, O = scores(name, key)
    return 100 * (Y < O).double()


def wins(name: str, key: str = "vgg") -> torch.Tensor:
    """(P,) 100 where the method's drop is below Grad-CAM's, 50 on a tie, 0 otherwise (Win %'s terms)."""
    a, b = drops(name, key), drops("Grad-CAM", key)
    return 100 * ((a < b).double() + 0.5 * (a == b).double())


def boxes(multi: bool = False) -> list:
    held, images, classes = _pairs(multi)
    return [held.boxes[i][held.box_classes[i] == c] for i, c in zip(images.tolist(), classes.tolist())]


def elsewhere() -> torch.Tensor:
    """(P, 64, 64) of held-120-multi: the pixels of the image's other classes (the target's own stay)."""
    held, images, classes = _pairs(True)
    return held.masks[images].any(dim=1) & ~held.masks[images, classes]


def locs(name: str, delta: float, key: str = "vgg", multi: bool = False, others_removed: bool = False) -> torch.Tensor:
    """(P,) Loc(delta) of each pair against the class's box(es); others_removed: the map set to 0 on every
    other-class pixel first (held-120-multi only)."""
    return _locs(name, float(delta), key, bool(multi), bool(others_removed))


@lru_cache(maxsize=None)
def _locs(name: str, delta: float, key: str, multi: bool, others_removed: bool) -> torch.Tensor:
    up = minicam.upsample(raw_maps(name, key, multi=multi), 64)
    if others_removed:
        up = up * ~elsewhere()
    return torch.tensor([metrics.loc(m, b, delta) for m, b in zip(up, boxes(multi))], dtype=torch.float64)


def off_target(name: str, layer: str = "relu6") -> torch.Tensor:
    """(P,) of held-120-multi: the share of the map's positive mass on objects of other classes (VGG)."""
    return _off_target(name, layer)


@lru_cache(maxsize=None)
def _off_target(name: str, layer: str) -> torch.Tensor:
    held, images, classes = _pairs(True)
    up = minicam.upsample(raw_maps(name, "vgg", layer, multi=True), 64)
    return metrics.off_target(up, held.masks[images], classes)


def _images(multi: bool = False):
    return _pairs(multi)[1]


# ---- registration --------------------------------------------------------------------------------------------

TAUGHT = "08a_evaluation_on_shapes"


def _claim(id, question, metric, a, b, better, fn, key="vgg", layer=None, multi=False):
    name, default_layer = MODELS[key]
    paired_claim(id, question=question, metric=metric, a=a, b=b, model=name, layer=layer or default_layer,
                 sample="held-120-multi" if multi else "held-120", taught_in=TAUGHT, better=better)(fn)


for _key in MODELS:
    _claim(f"08.avgdrop.gradcampp-vs-gradcam.{_key}", "Does Grad-CAM++'s explanation map E = L o I keep more of the "
           "model's confidence than Grad-CAM's (a lower Average Drop)?", "Average Drop (%)", "Grad-CAM++", "Grad-CAM",
           "lower", lambda k=_key: (drops("Grad-CAM++", k), drops("Grad-CAM", k), _images()), key=_key)

_claim("08.incr.gradcampp-vs-gradcam.vgg", "Does Grad-CAM++'s explanation map raise the model's confidence more "
       "often than Grad-CAM's?", "% Increase in Confidence", "Grad-CAM++", "Grad-CAM", "higher",
       lambda: (increases("Grad-CAM++"), increases("Grad-CAM"), _images()))
_claim("08.win.gradcampp-vs-gradcam.vgg", "Does Grad-CAM++ have the smaller drop than Grad-CAM on more than half of "
       "the pairs?", "Win % against Grad-CAM (ties half)", "Grad-CAM++", "an even split (50)", "higher",
       lambda: (wins("Grad-CAM++"), torch.full((len(_images()),), 50.0, dtype=torch.float64), _images()))
for _tag, _delta in DELTAS.items():
    _claim(f"08.loc-{_tag}.gradcampp-vs-gradcam.vgg", f"Does Grad-CAM++'s map fit the class's box better than "
           f"Grad-CAM's, by Loc({_delta:g})?", f"Loc({_delta:g})", "Grad-CAM++", "Grad-CAM", "higher",
           lambda d=_delta: (locs("Grad-CAM++", d), locs("Grad-CAM", d), _images()))
    _claim(f"08.loc-{_tag}.gradcampp-vs-gradcam.vgg.others-removed", f"With every other-class pixel removed from both "
           f"maps, does Grad-CAM++ fit the class's box better than Grad-CAM, by Loc({_delta:g})?",
           f"Loc({_delta:g}), other classes' pixels removed", "Grad-CAM++", "Grad-CAM", "higher",
           lambda d=_delta: (locs("Grad-CAM++", d, multi=True, others_removed=True),
                             locs("Grad-CAM", d, multi=True, others_removed=True), _images(True)), multi=True)
for _name in ("CAM", RC):
    _claim(f"08.avgdrop.{SLUG[_name]}-vs-gradcampp.vgg", f"Does {_name} have a lower Average Drop than Grad-CAM++?",
           "Average Drop (%)", _name, "Grad-CAM++", "lower",
           lambda n=_name: (drops(n), drops("Grad-CAM++"), _images()))
    _claim(f"08.loc-0.{SLUG[_name]}-vs-gradcampp.vgg", f"Does {_name} fit the class's box better than Grad-CAM++, "
           "by Loc(0)?", "Loc(0)", _name, "Grad-CAM++", "higher",
           lambda n=_name: (locs(n, 0.0), locs("Grad-CAM++", 0.0), _images()))
for _layer in ("relu6", "relu4"):
    _claim(f"08.off-target.gradcampp-vs-gradcam.vgg.{_layer}", "Does Grad-CAM++ put less of its map on objects of "
           "other classes than Grad-CAM (document 001's complaint)?", "off-target share", "Grad-CAM++", "Grad-CAM",
           "lower", lambda l=_layer: (off_target("Grad-CAM++", l), off_target("Grad-CAM", l), _images(True)),
           layer=_layer, multi=True)
