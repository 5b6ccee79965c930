"""Claims taught in notebook 03 (Grad-CAM): the pointing game layer by layer on the shapes VGG (held-100), and
where Grad-CAM and its counterfactual map put their mass on two-class images (held-100-two)."""
from __future__ import annotations

from functools import lru_cache

import torch

import minicam
from minicam.metrics import pointing_game
from minicam.models import load_pretrained
from minicam.suite.localization import snap

from . import paired_claim, register_sample, sample


# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

@lru_cache(maxsize=None)
def _vgg():
    return load_pretrained("shapes_vgg")


@lru_cache(maxsize=None)
def maps(layer: str) -> torch.Tensor:
    """(193, 64, 64) Grad-CAM of the shapes VGG at `layer` for every pair of held-100, upsampled, snapped."""
    held, idx, cls = sample("held-100")
    return snap(minicam.upsample(minicam.gradcam(_vgg(), held.images[idx], cls, layer), 64))


@lru_cache(maxsize=None)
def hits(layer: str, tolerance: int = 0) -> torch.Tensor:
    """(193,) 100 * hit of the pointing game (within `tolerance` px) for Grad-CAM at `layer` on held-100."""
    held, idx, cls = sample("held-100")
    return 100 * pointing_game(maps(layer), held.masks[idx, cls], tolerance=tolerance).double()


for _l1, _l2, _tol in (("relu3", "relu5", 0), ("relu4", "relu6", 0), ("relu4", "relu6", 4), ("relu5", "relu6", 4)):
    def _make(l1=_l1, l2=_l2, tol=_tol):
        within = f" within {tol} px" if tol else ""
        @paired_claim(f"03.pointing{'-' + str(tol) + 'px' if tol else ''}.{l1}-vs-{l2}",
                      question=f"Does Grad-CAM at {l1} point at the object{within} as often as at {l2}?",
                      metric=f"pointing game{within} (hit %)", a=f"Grad-CAM at {l1}", b=f"Grad-CAM at {l2}",
                      model="shapes_vgg", layer=f"{l1} vs {l2}", sample="held-100", taught_in="03_gradcam",
                      better="higher")
        def _():
            return hits(l1, tol), hits(l2, tol), sample("held-100")[1]
    _make()


@register_sample("held-100-two", "make_shapes(100, seed=1000), the images with exactly two classes that the shapes "
                                 "VGG predicts right (every label): both classes of each, target and other object")
def held_100_two():
    held = sample("held-100")[0]
    with torch.no_grad():
        logits = _vgg()(held.images)
    correct = ((logits > 0) == held.labels.bool()).all(1)
    two = [i for i in range(len(held)) if held.labels[i].sum() == 2 and correct[i]]
    idx, tgt, oth = [], [], []
    for i in two:
        a, b = held.labels[i].nonzero()[:, 0].tolist()
        idx += [i, i]
        tgt += [a, b]
        oth += [b, a]
    return held, torch.tensor(idx), torch.tensor(tgt), torch.tensor(oth)


def mass_share(raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass (upsampled to the image) that lies on a boolean pixel mask."""
    up = minicam.upsample(raw, mask.shape[-2:]).clamp(min=0)
    return (up * mask).sum(dim=(-2, -1)) / up.sum(dim=(-2, -1)).clamp(min=1e-12)


@lru_cache(maxsize=None)
def shares(counterfactual: bool, on: str) -> torch.Tensor:
    """(70,) share of the Grad-CAM (or counterfactual) map's mass on the target ("target") or other object."""
    held, idx, tgt, oth = sample("held-100-two")
    raw = minicam.gradcam(_vgg(), held.images[idx], tgt, "relu6", counterfactual=counterfactual)
    return mass_share(raw, held.masks[idx, tgt if on == "target" else oth]).double()


@paired_claim("03.counterfactual.target", question="Does Grad-CAM put more of its mass on the target object than "
              "the counterfactual map?", metric="share of the map's mass on the target object", a="Grad-CAM",
              b="counterfactual", model="shapes_vgg", layer="relu6", sample="held-100-two", taught_in="03_gradcam",
              better="higher")
def _():
    return shares(False, "target"), shares(True, "target"), sample("held-100-two")[1]


@paired_claim("03.counterfactual.other", question="Does the counterfactual map put more of its mass on the other "
              "object than Grad-CAM?", metric="share of the map's mass on the other object", a="counterfactual",
              b="Grad-CAM", model="shapes_vgg", layer="relu6", sample="held-100-two", taught_in="03_gradcam",
              better="higher")
def _():
    return shares(True, "other"), shares(False, "other"), sample("held-100-two")[1]
