"""Claims taught in notebook 00 (with its appendix A1) and notebook 01.

00 / A1 (the paired bootstrap's first uses): the biased VGG's accuracy against the VGG's, class by class
(00 section 9), and Grad-CAM's pointing game on crosses against the other classes of the same image (A1).
01: saliency against Grad-CAM (and the uniform map) on the localisation numbers of its section 4.
Every map is computed once a process (the claims of one notebook share them).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from minicam.data import CLASSES

from . import paired_claim, sample


# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

@lru_cache(maxsize=None)
def _right_200():
    # (200, 4) bool per model: "y^c > 0" agrees with the label, on the 200 held-out images of held-200
    from minicam.models import load_pretrained
    held, _, _ = sample("held-200")
    with torch.no_grad():
        return {name: (load_pretrained(name)(held.images) > 0) == held.labels.bool()
                for name in ("shapes_vgg", "shapes_vgg_biased")}


def _accuracy_claim(k: int, name: str):
    @paired_claim(f"00.accuracy.biased-vs-vgg.{name}",
                  question=f"Is the biased VGG's accuracy on '{name}' (present or absent) different from the VGG's?",
                  metric=f"accuracy on '{name}' (%)", a="shapes_vgg_biased", b="shapes_vgg",
                  model="decision", layer="y^c > 0", sample="held-200", taught_in="00_introduction",
                  better="higher")
    def _():
        right = _right_200()
        a = 100 * right["shapes_vgg_biased"][:, k].double()
        b = 100 * right["shapes_vgg"][:, k].double()
        return a, b, torch.arange(len(a))          # one pair per image


for _k, _name in enumerate(CLASSES):
    _accuracy_claim(_k, _name)


@lru_cache(maxsize=None)
def pair_maps():
    """held-100's pairs: saliency (64 x 64) and Grad-CAM at relu6 upsampled to 64 x 64, both unsnapped.

    Computed once a process: notebook 01 section 4 and the 01. claims use these maps."""
    import minicam
    from minicam.models import load_pretrained
    held, images, classes = sample("held-100")
    vgg = load_pretrained("shapes_vgg")
    x = held.images[images]
    return minicam.saliency(vgg, x, classes), minicam.upsample(minicam.gradcam(vgg, x, classes, "relu6"), 64)


@lru_cache(maxsize=None)
def _hits_100(tolerance: float = 0):
    # per pair: pointing-game hit (0 / 1) of saliency and of Grad-CAM, maps snapped (minicam.suite.localization)
    from minicam.metrics import pointing_game
    from minicam.suite.localization import snap
    held, images, classes = sample("held-100")
    own = held.masks[images, classes]
    sal, gc = pair_maps()
    return (pointing_game(snap(sal), own, tolerance=tolerance).double(),
            pointing_game(snap(gc), own, tolerance=tolerance).double())


def _cross_rows():
    # one pair per (cross, other class) of an image holding a cross: rows of held-100's pairs
    _, images, classes = sample("held-100")
    cross = CLASSES.index("cross")
    rows = [(r1, r2) for n in images.unique().tolist()
            for r1 in (images == n).nonzero()[:, 0].tolist() if classes[r1] == cross
            for r2 in (images == n).nonzero()[:, 0].tolist() if classes[r2] != cross]
    r1, r2 = torch.tensor(rows).T
    return r1, r2, images[r1]


for _tol, _suffix, _words in ((0, "strict", "on the object"), (4, "within-4px", "within 4 px of the object")):
    def _cross_claim(tol=_tol, suffix=_suffix, words=_words):
        @paired_claim(f"00.pointing.cross-vs-other.{suffix}",
                      question=f"Does Grad-CAM's maximum land {words} less often for a cross than for the other "
                               "classes of the same image?",
                      metric=f"pointing game{'' if tol == 0 else ' within 4 px'} (hit %)", a="cross",
                      b="other class of the same image", model="shapes_vgg", layer="relu6", sample="held-100",
                      taught_in="A1_pointing_per_class", better="higher")
        def _():
            _, gc = _hits_100(tol)
            r1, r2, img = _cross_rows()
            return 100 * gc[r1], 100 * gc[r2], img
    _cross_claim()


@paired_claim("01.pointing.saliency-vs-gradcam",
              question="Does saliency's maximum land on the target as often as Grad-CAM's (the survey's 'bad "
                       "localization')?",
              metric="pointing game (hit %)", a="saliency", b="Grad-CAM", model="shapes_vgg", layer="relu6",
              sample="held-100", taught_in="01_gradients", better="higher")
def _():
    sal, gc = _hits_100(0)
    _, images, _ = sample("held-100")
    return 100 * sal, 100 * gc, images


def _shares(m, region):
    return 100 * (m * region).sum(dim=(1, 2)) / m.sum(dim=(1, 2))


@paired_claim("01.mass-on-target.saliency-vs-uniform",
              question="Does saliency put more of its mass on the target object than a uniform map would?",
              metric="share of the map on the target (%)", a="saliency", b="uniform map", model="shapes_vgg",
              layer="input", sample="held-100", taught_in="01_gradients", better="higher")
def _():
    held, images, classes = sample("held-100")
    own = held.masks[images, classes]
    sal, _ = pair_maps()
    return _shares(sal, own), 100 * own.double().mean(dim=(1, 2)), images


@paired_claim("01.mass-on-others.saliency-vs-gradcam",
              question="Does saliency put more of its mass on objects of other classes than Grad-CAM does?",
              metric="share of the map on other classes' objects (%)", a="saliency", b="Grad-CAM",
              model="shapes_vgg", layer="relu6", sample="held-100", taught_in="01_gradients", better="lower")
def _():
    held, images, classes = sample("held-100")
    own = held.masks[images, classes]
    others = held.masks[images].any(dim=1) & ~own
    sal, gc = pair_maps()
    return _shares(sal, others), _shares(gc, others), images


@paired_claim("01.class-correlation.saliency-vs-gradcam",
              question="Are the maps of two classes of one image more alike for saliency than for Grad-CAM "
                       "(less class-discriminative)?",
              metric="correlation of two classes' maps", a="saliency", b="Grad-CAM", model="shapes_vgg",
              layer="relu6", sample="held-100", taught_in="01_gradients", better="lower")
def _():
    _, images, _ = sample("held-100")
    sal, gc = pair_maps()
    first_two = [(images == n).nonzero()[:2, 0] for n in images.unique().tolist() if (images == n).sum() >= 2]
    corr = [[torch.corrcoef(m[pair].flatten(1))[0, 1].item() for pair in first_two] for m in (sal, gc)]
    return corr[0], corr[1], torch.stack([images[pair[0]] for pair in first_two])
