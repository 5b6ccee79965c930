"""Claims taught in notebook 08b (sanity checks): the model-randomisation test of Adebayo et al. (cascading,
from the output down) and the data-randomisation test (the shuffled-label control), one claim per method, model
and randomisation step the notebook's conclusions rest on; and deletion AUC against Grad-CAM. All on the sample
"sanity-6" (the first 6 held-out images of seed 1000, each explained for the class of its largest object).


Ids: ``08b.sanity.<method>.<model>.<step>``, step the lowest randomised layer of the cascade (``conv1``: every
layer random) or ``shuffled`` (the shuffled-label control); ``08b.deletion.<method>-vs-gradcam.vgg``.
The maps are memoised per process, so the notebook's cascade (``cascade``) and the claims compute each map once.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from minicam import metrics, sanity
from minicam.data import make_shapes
from minicam.lrp import lrp
from minicam.methods import METHODS
from minicam.models import CONTROLS, load_pretrained

from . import paired_claim, register_sample, sample, sanity_claim

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

N = 6
MODELS = {"vgg": ("shapes_vgg", "relu6"), "resnet": ("shapes_resnet", "layer4")}
SUITE = ["saliency", "guided backprop", "Grad-CAM", "Guided Grad-CAM", "Grad-CAM++", "CAM", "LRP", "Relevance-CAM"]
# the registry's LRP is LRP-epsilon (eps 0.25) from the logit; the z+ composite (z+ everywhere, z^B at the first
# conv) is the rule notebook 10's localisation uses, checked here at the end points only
EXTRA = {"LRP z+": lambda model, x, target, layer=None: lrp(model, x, target, rule="zplus", first_rule="zb")}
SLUG = {"saliency": "saliency", "guided backprop": "guided-backprop", "Grad-CAM": "gradcam",
        "Guided Grad-CAM": "guided-gradcam", "Grad-CAM++": "gradcampp", "CAM": "cam", "LRP": "lrp",
        "Relevance-CAM": "relevance-cam", "LRP z+": "lrp-zplus"}
STEP = 512          # deletion: pixels removed per step (1/8 of a 64 x 64 image)


@register_sample("sanity-6", "make_shapes(60, seed=1000), its first 6 images, each explained for the class of its "
                             "largest object (one map per image)")
def sanity_6():
    held = make_shapes(60, seed=1000)
    x = held.images[:N]
    cls = held.masks[:N].flatten(2).sum(2).argmax(1)
    return held, x, cls


def method(name):
    return EXTRA[name] if name in EXTRA else METHODS[name]


@lru_cache(maxsize=None)
def model(key: str):
    """The trained model, or the shuffled-label control for key "vgg-shuffled"."""
    return load_pretrained(CONTROLS[0]) if key == "vgg-shuffled" else load_pretrained(MODELS[key][0])


@lru_cache(maxsize=None)
def steps(key: str) -> tuple:
    return tuple(sanity.cascade_layers(model(key)))


@lru_cache(maxsize=None)
def randomised(key: str, step: str):
    """The model with every layer from the output down to `step` re-initialised (sanity.randomized, seed 0)."""
    names = list(steps(key))
    return sanity.randomized(model(key), names[:names.index(step) + 1], seed=0)


def maps(name: str, key: str, step: str | None = None) -> torch.Tensor:
    """(6, 64, 64) pixel maps (sanity.pixel_maps) of one method: trained (step None), randomised down to a
    cascade step, or on the shuffled-label control (step "shuffled", VGG only)."""
    return _maps(name, key, step)


@lru_cache(maxsize=None)
def _maps(name: str, key: str, step: str | None) -> torch.Tensor:
    # memoised with every argument given, so that each call form finds the same entry
    _, x, cls = sample("sanity-6")
    net = model(key) if step is None else model("vgg-shuffled") if step == "shuffled" else randomised(key, step)
    return sanity.pixel_maps(method(name)(net, x, cls, MODELS[key][1]), x.shape[-2:])


@lru_cache(maxsize=None)
def similarity(name: str, key: str, step: str):
    """sanity.compare_maps of the randomised (or control) maps against the trained ones, image by image."""
    return sanity.compare_maps(maps(name, key), maps(name, key, step), 64)


def rho(name: str, key: str, step: str) -> torch.Tensor:
    """(6,) Spearman rho of the |maps| (randomised against trained), NaN where a map is constant."""
    return similarity(name, key, step).spearman_abs


def cascade(key: str, methods=SUITE):
    """The cascading randomisation record of sanity.cascading_randomization (steps, maps, similarity), built
    from the memoised maps: the same calls, so the claims below reuse the notebook's maps."""
    names = list(steps(key))
    return sanity._Randomization(names, {m: [maps(m, key)] + [maps(m, key, s) for s in names] for m in methods},
                                 {m: [similarity(m, key, s) for s in names] for m in methods})


@lru_cache(maxsize=None)
def deletion(name: str):
    """Deletion curve of one method's trained-VGG map: (fractions, (6, 9) probabilities), black pixels."""
    _, x, cls = sample("sanity-6")
    return metrics.deletion_curve(model("vgg"), x, maps(name, "vgg"), cls, STEP, baseline=0.0, prob="sigmoid")


def deletion_auc(name: str) -> torch.Tensor:
    return metrics.curve_auc(*deletion(name))


# the steps the notebook's conclusions rest on: the last block random, every layer random, and where a method
# that keeps its picture longer first passes
LAST = {"vgg": "conv6", "resnet": "layer4"}
FIRST_PASS = [("guided backprop", "vgg", "conv2"), ("guided backprop", "resnet", "layer2"),
              ("Grad-CAM", "resnet", "layer3"), ("LRP", "resnet", "bn1")]
POINTS = ([(m, k, LAST[k]) for m in SUITE for k in MODELS] + [(m, k, "conv1") for m in SUITE for k in MODELS]
          + FIRST_PASS + [("LRP z+", k, s) for k in MODELS for s in (LAST[k], "conv1")]
          + [(m, "vgg", "shuffled") for m in SUITE])


def claim_id(name: str, key: str, step: str) -> str:
    return f"08b.sanity.{SLUG[name]}.{key}.{step}"


def _register_sanity(name: str, key: str, step: str) -> None:
    model_name, layer = MODELS[key]
    if step == "shuffled":
        question = f"Does {name}'s map change when the model was trained on shuffled labels?"
        b = "shuffled-label control"
    else:
        question = f"Does {name}'s map change when the layers from the output down to {step} are random?"
        b = f"random down to {step}"

    @sanity_claim(claim_id(name, key, step), question=question, metric="|Spearman rho| of the |maps|",
                  a=f"{name} trained", b=b, model=model_name, layer=layer, sample="sanity-6",
                  taught_in="08b_sanity_checks")
    def _():
        return rho(name, key, step), torch.arange(N)


for _point in POINTS:
    _register_sanity(*_point)

DELETION = ["Grad-CAM++", "CAM", "Relevance-CAM", "saliency", "LRP"]


def _register_deletion(name: str) -> None:
    @paired_claim(f"08b.deletion.{SLUG[name]}-vs-gradcam.vgg", question=f"Does deleting pixels in the order of "
                  f"{name}'s map lower the class probability faster than in Grad-CAM's order?",
                  metric="deletion AUC", a=name, b="Grad-CAM", model="shapes_vgg", layer="relu6",
                  sample="sanity-6", taught_in="08b_sanity_checks", better="lower", digits=2)
    def _():   # two digits: on 6 images a float32 AUC's third digit moves with the CPU's kernels (SSE4.1 vs AVX2)
        return deletion_auc(name), deletion_auc("Grad-CAM"), torch.arange(N)


for _name in DELETION:
    _register_deletion(_name)
