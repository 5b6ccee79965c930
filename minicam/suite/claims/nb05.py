"""Notebook 05's claims: does Grad-CAM++ cover several objects of one class better than Grad-CAM?

One sample answers the question for the whole suite ("several-400", below); notebook 05 section 9 shows the
computation, notebooks 09 and 10 cite the results. Both maps are upsampled to the 64x64 image and min-max
normalised, as a person looks at them; an object's *peak* is the map's largest value inside its box.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from . import paired_claim, register_sample, sample

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

LAYERS = ("relu4", "relu6")
METHODS = ("Grad-CAM", "Grad-CAM++")


@register_sample("several-400", "make_shapes(400, seed=1000): the first 400 held-out images; every (image, class) "
                                "pair whose class has two or more objects in the image (197 pairs from 181 images)")
def several_400():
    from minicam.data import CLASSES, make_shapes
    data = make_shapes(400, seed=1000)
    pairs = [(i, c) for i in range(len(data)) for c in range(len(CLASSES))
             if int((data.box_classes[i] == c).sum()) >= 2]
    images = torch.tensor([i for i, _ in pairs])
    classes = torch.tensor([c for _, c in pairs])
    return data, images, classes


@lru_cache(maxsize=None)
def several_maps():
    """{(layer, method): (pairs, 64, 64)} normalised maps of shapes_vgg on the several-400 pairs."""
    import minicam
    from minicam.models import load_pretrained
    data, images, classes = sample("several-400")
    model = load_pretrained("shapes_vgg")
    x = data.images[images]
    maps = {}
    for layer in LAYERS:     # one forward and backward pass per layer serves both methods
        cap = minicam.capture(model, x, classes, layer)
        raw = {"Grad-CAM": minicam.weighted_sum(minicam.gradcam_weights(cap.grads), cap.acts),     # = minicam.gradcam
               "Grad-CAM++": minicam.weighted_sum(minicam.gradcampp_weights(cap.acts, cap.grads), cap.acts)}  # = gradcam_pp
        for name in METHODS:
            maps[layer, name] = minicam.normalize(minicam.upsample(raw[name], 64))
    return maps


def object_peaks(heat, data, images, classes):
    """Per pair, the list of the map's peaks inside the boxes of the target class's objects."""
    return [[m[y1:y2, x1:x2].max().item() for x1, y1, x2, y2 in data.boxes[i][data.box_classes[i] == c].tolist()]
            for m, i, c in zip(heat, images.tolist(), classes.tolist())]


@lru_cache(maxsize=None)
def several_measures():
    """{(measure, layer, method): one float64 per pair}: weakest peak, all covered (0/1), off-target share."""
    from minicam.metrics import off_target
    data, images, classes = sample("several-400")
    out = {}
    for (layer, name), heat in several_maps().items():
        weakest = torch.tensor([min(p) for p in object_peaks(heat, data, images, classes)], dtype=torch.float64)
        out["weakest-peak", layer, name] = weakest
        out["all-covered", layer, name] = (weakest >= 0.5).double()
        out["off-target", layer, name] = off_target(heat, data.masks[images], classes).double()
    return out


QUESTION = "Does Grad-CAM++ cover several objects of one class better than Grad-CAM?"
METRICS = {"weakest-peak": ("weakest object's peak (0-1)", "higher"),
           "all-covered": ("every object covered (peak >= 0.5), 0/1", "higher"),
           "off-target": ("map mass on other classes' objects", "lower")}


def _make(measure, layer):
    metric, better = METRICS[measure]

    @paired_claim(f"05.several.{measure}.{layer}", question=QUESTION, metric=metric, a="Grad-CAM++", b="Grad-CAM",
                  model="shapes_vgg", layer=layer, sample="several-400", taught_in="05_gradcam_pp", better=better)
    def _():
        _, images, _ = sample("several-400")
        m = several_measures()
        return m[measure, layer, "Grad-CAM++"], m[measure, layer, "Grad-CAM"], images.tolist()
    return _


for _measure in METRICS:
    for _layer in LAYERS:
        _make(_measure, _layer)
