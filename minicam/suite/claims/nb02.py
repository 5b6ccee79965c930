"""Claims taught in notebook 02 (CAM): CAM against saliency on boxes and on the pointing game, the threshold
of the box protocol, and where the pointing game misses crosses. All on the sample "held-100"."""
from __future__ import annotations

from functools import lru_cache

import torch

import minicam
from minicam.metrics import box_from_map, iou, pointing_game
from minicam.models import load_pretrained
from minicam.suite.localization import snap

from . import paired_claim, sample

# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

MODELS = {"vgg": ("shapes_vgg", "relu6"), "resnet": ("shapes_resnet", "layer4")}
CROSS = 3                                   # minicam.data.CLASSES.index("cross")
TUNED = {"vgg": 0.7, "resnet": 0.6}         # each CAM's best threshold of notebook 02's sweep


@lru_cache(maxsize=None)
def _model(key):
    return load_pretrained(MODELS[key][0])


@lru_cache(maxsize=None)
def maps(method: str, key: str) -> torch.Tensor:
    """(193, 64, 64): the map of every (image, present class) pair of held-100 at image resolution."""
    held, idx, cls = sample("held-100")
    x = held.images[idx]
    if method == "CAM":
        return minicam.upsample(minicam.cam(_model(key), x, cls, MODELS[key][1], "fc"), 64)
    return minicam.saliency(_model(key), x, cls)


@lru_cache(maxsize=None)
def boxes(method: str, key: str, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(193,) box IoU and (193,) box area / true box area of each pair: the box of the largest connected
    component above fraction * max (minicam.metrics.box_from_map), scored against the best-matching true box."""
    held, idx, cls = sample("held-100")
    ious, ratios = [], []
    for m, i, k in zip(maps(method, key), idx.tolist(), cls.tolist()):
        box = box_from_map(m, fraction)
        true = held.boxes[i][held.box_classes[i] == k]
        overlap = iou(box, true)
        ious.append(overlap.max().item())
        ratios.append((_area(box) / _area(true[overlap.argmax()])).item())
    return torch.tensor(ious, dtype=torch.float64), torch.tensor(ratios, dtype=torch.float64)


def _area(box):
    return ((box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])).double()


def box_ious(method: str, key: str, fraction: float) -> torch.Tensor:
    """(193,) the box IoU of each pair (see ``boxes``)."""
    return boxes(method, key, fraction)[0]


@lru_cache(maxsize=None)
def hits(method: str, key: str) -> torch.Tensor:
    """(193,) 100 * hit of the pointing game (strict), maps snapped (minicam.suite.localization.snap)."""
    held, idx, cls = sample("held-100")
    return 100 * pointing_game(snap(maps(method, key)), held.masks[idx, cls]).double()


def cross_pairs():
    """Rows (r1, r2): r1 a cross, r2 another class of the same image; one per cross and other class."""
    held, idx, cls = sample("held-100")
    rows = [(r1, r2) for n in idx.unique().tolist()
            for r1 in (idx == n).nonzero()[:, 0].tolist() if cls[r1] == CROSS
            for r2 in (idx == n).nonzero()[:, 0].tolist() if cls[r2] != CROSS]
    return torch.tensor(rows).T


def _register(key: str) -> None:
    name, layer = MODELS[key]
    common = dict(model=name, layer=layer, sample="held-100", taught_in="02_cam", better="higher")

    @paired_claim(f"02.box-iou.cam-vs-saliency.{key}", question="At the protocol's 20 % threshold, do CAM's boxes "
                  "overlap the true box more than the saliency map's?", metric="box IoU at the 20 % threshold",
                  a="CAM", b="saliency", **common)
    def _():
        return box_ious("CAM", key, 0.2), box_ious("saliency", key, 0.2), sample("held-100")[1]

    @paired_claim(f"02.pointing.cam-vs-saliency.{key}", question="Does CAM's maximum fall on the object more "
                  "often than the saliency map's?", metric="pointing game (hit %)", a="CAM", b="saliency", **common)
    def _():
        return hits("CAM", key), hits("saliency", key), sample("held-100")[1]

    t = TUNED[key]
    @paired_claim(f"02.box-iou.threshold.{key}", question=f"Does CAM at {t * 100:.0f} % of the max give better boxes than "
                  "at the protocol's 20 %?", metric="box IoU", a=f"CAM at {t * 100:.0f} %", b="CAM at 20 %", **common)
    def _():
        return box_ious("CAM", key, t), box_ious("CAM", key, 0.2), sample("held-100")[1]

    @paired_claim(f"02.box-iou.tuned-cam-vs-saliency.{key}", question=f"Does CAM at {t * 100:.0f} % give better boxes "
                  "than the saliency map at 20 % (its best)?", metric="box IoU", a=f"CAM at {t * 100:.0f} %",
                  b="saliency at 20 %", **common)
    def _():
        return box_ious("CAM", key, t), box_ious("saliency", key, 0.2), sample("held-100")[1]

    @paired_claim(f"02.pointing.cross-vs-other.{key}", question="Does CAM's maximum hit a cross as often as "
                  "another class of the same image?", metric="pointing game (hit %)", a="cross",
                  b="other class of the image", **common)
    def _():
        r1, r2 = cross_pairs()
        h = hits("CAM", key)
        return h[r1], h[r2], sample("held-100")[1][r1]


for _key in MODELS:
    _register(_key)


@paired_claim("02.pointing.crosses.resnet-vs-vgg", question="On the crosses, does the ResNet's CAM hit more often "
              "than the VGG's?", metric="pointing game (hit %)", a="CAM, shapes ResNet", b="CAM, shapes VGG",
              model="shapes_resnet vs shapes_vgg", layer="layer4 vs relu6", sample="held-100", taught_in="02_cam",
              better="higher")
def _():
    held, idx, cls = sample("held-100")
    on = cls == CROSS
    return hits("CAM", "resnet")[on], hits("CAM", "vgg")[on], idx[on]
