"""Claims taught in notebook 03b (finding bias): the biased model's circle accuracy when the cue agrees and
when it disagrees, and the circle evidence Grad-CAM finds in the cue's corner (sample held-100-cue)."""
from __future__ import annotations

from functools import lru_cache

import torch

import minicam
from minicam.data import CLASSES, CUE_CLASS, make_shapes
from minicam.models import load_pretrained

from . import paired_claim, register_sample, sample

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

K_CUE = CLASSES.index(CUE_CLASS)
MODELS = {"biased": "shapes_vgg_biased", "unbiased": "shapes_vgg"}


@register_sample("held-100-cue", "make_shapes(100, seed=1000) drawn twice, with bias='train' (the cue exactly "
                                 "with a circle) and bias='flip' (exactly without): the same 100 images, one pair "
                                 "per image")
def held_100_cue():
    agree = make_shapes(100, seed=1000, bias="train")
    disagree = make_shapes(100, seed=1000, bias="flip")
    truth = agree.labels[:, K_CUE].bool()
    return agree, disagree, truth


@lru_cache(maxsize=None)
def _model(name):
    return load_pretrained(MODELS[name])


def right(name: str, which: str) -> torch.Tensor:
    """(100,) 100 * (the model's circle label is right) on the agreeing or the disagreeing images."""
    agree, disagree, truth = sample("held-100-cue")
    with torch.no_grad():
        said = _model(name)((agree if which == "agree" else disagree).images)[:, K_CUE] > 0
    return 100 * (said == truth).double()


@lru_cache(maxsize=None)
def corner_logits(name: str) -> torch.Tensor:
    """(100,) circle evidence (logits) of the top-left 4 x 4 cells of Grad-CAM at relu6, cue on every image."""
    agree, disagree, truth = sample("held-100-cue")
    x_cue = torch.where(truth[:, None, None, None], agree.images, disagree.images)
    maps = minicam.gradcam(_model(name), x_cue, K_CUE, "relu6")
    return maps[:, :4, :4].sum(dim=(1, 2)).double()


for _name in MODELS:
    def _make(name=_name):
        @paired_claim(f"03b.accuracy.{name}", question=f"Is the {name} model's circle label right more often when "
                      "the cue agrees with the class than when it disagrees?", metric="circle accuracy (%)",
                      a="cue agrees", b="cue disagrees", model=MODELS[name], layer="", sample="held-100-cue",
                      taught_in="03b_finding_bias", better="higher")
        def _():
            return right(name, "agree"), right(name, "disagree"), torch.arange(100)
    _make()

for _label, _with in (("with-circle", True), ("without-circle", False)):
    def _make(label=_label, with_circle=_with):
        @paired_claim(f"03b.corner.{label}", question="Does the biased model take more circle evidence from the "
                      f"cue's corner than the unbiased one (images {label.replace('-', ' ')})?",
                      metric="circle evidence from the top-left corner (logits)", a="biased", b="unbiased",
                      model="shapes_vgg_biased vs shapes_vgg", layer="relu6", sample="held-100-cue",
                      taught_in="03b_finding_bias", better="higher")
        def _():
            truth = sample("held-100-cue")[2]
            group = truth if with_circle else ~truth
            return corner_logits("biased")[group], corner_logits("unbiased")[group], torch.arange(100)[group]
    _make()
