"""Notebook 04's claims: is guided backprop class-discriminative, and what does Guided Grad-CAM add?

One sample ("two-class-100", below): the held-out images with exactly two classes, both predicted right by the
shapes VGG; every image is explained for each of its two classes and for one absent class. Notebook 04 (sections
4 and 5) shows the computation; the maps are the four of its ``explain`` (input maps reduced by max |.| over the
colour channels, Grad-CAM at relu6 upsampled to 64x64).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from . import paired_claim, register_sample, sample


# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

@register_sample("two-class-100", "make_shapes(100, seed=1000): the held-out images with exactly two classes, both "
                                  "predicted right by shapes_vgg (35 images); each explained for its two classes "
                                  "(70 pairs) and for its first absent class")
def two_class_100():
    # notebook 03's sample "held-100-two", with each image's absent classes' first
    held, idx, tgt, oth = sample("held-100-two")
    two = idx[::2].tolist()
    absent = [int((held.labels[i] == 0).nonzero()[0, 0]) for i in two]
    return held, two, idx.tolist(), tgt.tolist(), oth.tolist(), absent


def explain(vgg, x, target):
    """The four maps at image resolution (N, 64, 64), as notebook 04 defines them."""
    import minicam
    grad = minicam.gradcam(vgg, x, target, "relu6")
    return {"saliency": minicam.saliency(vgg, x, target),
            "guided backprop": minicam.guided_backprop(vgg, x, target).abs().amax(dim=1),
            "Grad-CAM": minicam.upsample(grad, x.shape[-2:]),
            "Guided Grad-CAM": minicam.guided_gradcam(vgg, x, target, "relu6").abs().amax(dim=1)}


@lru_cache(maxsize=None)
def two_class_maps():
    """(maps, maps_absent): rows 2j, 2j+1 of maps are image two[j] for its two classes; maps_absent one per image."""
    from minicam.models import load_pretrained
    held, two, idx, tgt, oth, absent = sample("two-class-100")
    vgg = load_pretrained("shapes_vgg")
    return explain(vgg, held.images[idx], torch.tensor(tgt)), explain(vgg, held.images[two], torch.tensor(absent))


def pearson(m1, m2):
    """Correlation over pixels, one value per pair of maps (0 if a map is constant)."""
    m1 = m1.flatten(1) - m1.flatten(1).mean(1, keepdim=True)
    m2 = m2.flatten(1) - m2.flatten(1).mean(1, keepdim=True)
    return (m1 * m2).sum(1) / (m1.norm(dim=1) * m2.norm(dim=1)).clamp(min=1e-12)


def target_share(m, own, other):
    """Per map: of the mass on the two objects, the share on the explained class's object."""
    on_own, on_other = (m * own).sum(dim=(1, 2)), (m * other).sum(dim=(1, 2))
    return on_own / (on_own + on_other).clamp(min=1e-12)


def object_share(m, own):
    """Per map: the share of the map's total mass on the explained class's object."""
    return (m * own).sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp(min=1e-12)


def _masks():
    held, two, idx, tgt, oth, absent = sample("two-class-100")
    return held.masks[idx, tgt], held.masks[idx, oth]


Q_CLASS = "Does the map depend on the class it explains (class-discriminative)?"
Q_RES = "Does the map stay on the explained object (high resolution)?"
KW = dict(model="shapes_vgg", layer="relu6", sample="two-class-100", taught_in="04_guided_gradcam")
SLUG = {"guided backprop": "guided-backprop", "Grad-CAM": "gradcam", "Guided Grad-CAM": "guided-gradcam"}


@paired_claim("04.class-corr.guided-backprop-vs-gradcam", question=Q_CLASS, a="guided backprop", b="Grad-CAM",
              metric="correlation of the two present classes' maps", better="lower", **KW)
def _():
    maps, _ = two_class_maps()
    _, two, *_ = sample("two-class-100")
    gb, gc = maps["guided backprop"], maps["Grad-CAM"]
    return pearson(gb[0::2], gb[1::2]), pearson(gc[0::2], gc[1::2]), list(two)


@paired_claim("04.class-corr.guided-backprop.absent-vs-present", question=Q_CLASS,
              a="absent class", b="other present class", better="lower",
              metric="guided backprop: correlation with a present class's map", **KW)
def _():
    maps, absent = two_class_maps()
    _, two, *_ = sample("two-class-100")
    gb = maps["guided backprop"]
    return pearson(gb[0::2], absent["guided backprop"]), pearson(gb[0::2], gb[1::2]), list(two)


def _share_claim(kind, a, b):
    question, metric = ((Q_CLASS, "share of the objects' mass on the explained one") if kind == "target-mass" else
                        (Q_RES, "share of the map's mass on the explained object"))

    @paired_claim(f"04.{kind}.{SLUG[a]}-vs-{SLUG[b]}", question=question, a=a, b=b, metric=metric, **KW)
    def _():
        maps, _ = two_class_maps()
        _, _, idx, *_ = sample("two-class-100")
        own, other = _masks()
        f = (lambda m: target_share(m, own, other)) if kind == "target-mass" else (lambda m: object_share(m, own))
        return f(maps[a]), f(maps[b]), list(idx)
    return _


for _a, _b in (("Grad-CAM", "guided backprop"), ("Guided Grad-CAM", "guided backprop"), ("Guided Grad-CAM", "Grad-CAM")):
    _share_claim("target-mass", _a, _b)
for _a, _b in (("guided backprop", "Grad-CAM"), ("Guided Grad-CAM", "guided backprop"), ("Guided Grad-CAM", "Grad-CAM")):
    _share_claim("object-share", _a, _b)
