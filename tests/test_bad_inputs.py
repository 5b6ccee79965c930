"""The edge, walked with a table of bad inputs (issue 12's three rules): every name in the `__all__` of
every module of minicam (the library, minicam.suite and the apps), not the helpers behind them.

For each row: the call raises the row's error type (never a silent zero, NaN or miss), the message
names the argument and says what would be right, and afterwards the inputs, the model (mode,
parameters, requires_grad, .grad) and torch's grad mode are as they were. Rows can forbid functions
that would be expensive work (training, image generation): the error must come before them.

To cover another module, append its rows: ``BAD_INPUTS["minicam.gradients"] = [Bad(...), ...]``.
`test_every_public_function_has_a_row` then requires a row for each function and class of its ``__all__``
(every module declares one; records the library builds and exceptions are not called with arguments),
so a new function at the edge without a row fails. Helpers take clean values and have no rows.
"""
from __future__ import annotations

import importlib
import inspect
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn

from minicam.checks import NotApplicable
from minicam.data import make_shapes


def call(*args, **kwargs):
    """The arguments of one row's call."""
    return args, kwargs


@dataclass(frozen=True)
class Bad:
    """One bad call: function (a name in the module, "Class.method" for a method) called with the
    arguments `make()` builds, which must raise `error` with a message naming `arg`."""
    function: str
    make: Callable[[], tuple]
    error: type
    arg: str
    forbid: tuple = ()   # "module.attribute" that must not run before the error (expensive work)


NAN, INF = float("nan"), float("inf")
MISSING_DIR = str(Path(tempfile.gettempdir()) / "minicam-no-such-dir" / "m.pt")
SCRATCH_OUT = str(Path(tempfile.gettempdir()) / "minicam-bad-inputs.pt")   # probed, never written


def tiny_model():
    """x (N, 1, 2, 2) -> 2 logits; in training mode with a .grad, so that changes would show."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).train()
    model[1].weight.grad = torch.ones_like(model[1].weight)
    return model


def overflow_model():
    """Finite weights whose logits overflow to inf on an image of ones."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.fill_(1e38)
    return model


def image_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)).train()


def with_nan(t, value=NAN):
    t = t.clone()
    t.view(-1)[0] = value
    return t


def small_map():
    return torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 4.0, 2.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])


def small_mask():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1:3, 1:3] = True
    return mask


def class_masks():
    return torch.stack([small_mask(), ~small_mask()])


BOX = torch.tensor([[1, 1, 3, 3]])
X2 = torch.ones(2, 1, 2, 2)
CAMS2 = torch.rand(2, 2, 2, generator=torch.Generator().manual_seed(0))
Y, O = torch.tensor([0.9, 0.8]), torch.tensor([0.5, 0.7])
DROPS = torch.tensor([0.1, 0.2])


def shapes_batch():
    return make_shapes(3, 0, size=32)


def dataset():
    from minicam.data import ShapesDataset
    return ShapesDataset(2, 0, size=32)


NO_TRAINING = ("minicam.apps.train._fit", "minicam.apps.train.make_shapes", "torch.save")

BAD_INPUTS: dict[str, list[Bad]] = {
    "minicam.data": [
        Bad("make_shapes", lambda: call(0, 0), ValueError, "n"),
        Bad("make_shapes", lambda: call("3", 0), TypeError, "n"),
        Bad("make_shapes", lambda: call(2.5, 0), ValueError, "n"),
        Bad("make_shapes", lambda: call(2, None), TypeError, "seed"),
        Bad("make_shapes", lambda: call(2, 1.5), ValueError, "seed"),
        Bad("make_shapes", lambda: call(2, -1), ValueError, "seed"),
        Bad("make_shapes", lambda: call(2, 0, size=31), ValueError, "size"),
        Bad("make_shapes", lambda: call(2, 0, size=40.5), ValueError, "size"),
        Bad("make_shapes", lambda: call(2, 0, bias="Train"), ValueError, "bias"),
        Bad("cue_mask", lambda: call("64"), TypeError, "size"),
        Bad("cue_mask", lambda: call(3), ValueError, "size"),
        Bad("cue_mask", lambda: call(64.5), ValueError, "size"),
        Bad("ShapesBatch.__getitem__", lambda: call(shapes_batch(), 3), IndexError, "index"),
        Bad("ShapesBatch.__getitem__", lambda: call(shapes_batch(), True), TypeError, "index"),
        Bad("ShapesBatch.__getitem__", lambda: call(shapes_batch(), 1.0), TypeError, "index"),
        Bad("ShapesBatch.__getitem__", lambda: call(shapes_batch(), [0.5]), TypeError, "index"),
        Bad("ShapesDataset", lambda: call(0, 0), ValueError, "n"),
        Bad("ShapesDataset", lambda: call(2, "0"), TypeError, "seed"),
        Bad("ShapesDataset.__getitem__", lambda: call(dataset(), 2), IndexError, "i"),
        Bad("ShapesDataset.__getitem__", lambda: call(dataset(), 0.0), ValueError, "i"),
    ],
    "minicam.maps": [
        Bad("upsample", lambda: call(torch.rand(1, 1, 2, 2), 4), ValueError, "maps"),
        Bad("upsample", lambda: call([[0.0, 1.0]], 4), ValueError, "maps"),
        Bad("upsample", lambda: call(torch.rand(2, 2, dtype=torch.complex64), 4), TypeError, "maps"),
        Bad("upsample", lambda: call(torch.rand(2, 0, 2), 4), ValueError, "maps"),
        Bad("upsample", lambda: call(torch.rand(2, 2), 4.5), ValueError, "size"),
        Bad("upsample", lambda: call(torch.rand(2, 2), "4"), TypeError, "size"),
        Bad("upsample", lambda: call(torch.rand(2, 2), (4, 0)), ValueError, "size"),
        Bad("normalize", lambda: call(torch.rand(3)), ValueError, "maps"),
        Bad("normalize", lambda: call([[0.0, 1.0]]), ValueError, "maps"),
        Bad("normalize", lambda: call(torch.rand(2, 2, dtype=torch.complex64)), TypeError, "maps"),
    ],
    "minicam.metrics": [
        Bad("explanation_map", lambda: call(with_nan(CAMS2), X2), ValueError, "cam"),
        Bad("explanation_map", lambda: call(CAMS2[:1], X2), ValueError, "cam"),
        Bad("explanation_map", lambda: call(CAMS2, with_nan(X2)), ValueError, "x"),
        Bad("explanation_map", lambda: call(CAMS2, X2[0]), ValueError, "x"),
        Bad("target_probs", lambda: call(tiny_model(), X2, 0, prob="relu"), ValueError, "prob"),
        Bad("target_probs", lambda: call("tiny", X2, 0), TypeError, "model"),
        Bad("target_probs", lambda: call(tiny_model(), X2, 2), ValueError, "target"),
        Bad("target_probs", lambda: call(tiny_model(), X2, 1.0), TypeError, "target"),
        Bad("target_probs", lambda: call(tiny_model(), with_nan(X2), 0), ValueError, "x"),
        Bad("target_probs", lambda: call(overflow_model(), X2, 0), ValueError, "scores"),
        Bad("scores_on_explanations", lambda: call(tiny_model(), X2, with_nan(CAMS2, INF), 0), ValueError, "cams"),
        Bad("scores_on_explanations", lambda: call(tiny_model(), X2, CAMS2, [0, 0, 0]), ValueError, "target"),
        Bad("confidence_drop", lambda: call(with_nan(Y), O), ValueError, "Y"),
        Bad("confidence_drop", lambda: call(Y, torch.tensor([0.5])), ValueError, "O"),
        Bad("average_drop", lambda: call(Y, with_nan(O)), ValueError, "O"),
        Bad("average_drop", lambda: call(torch.tensor([2.5, 1.0]), O), ValueError, "Y"),
        Bad("increase_in_confidence", lambda: call(with_nan(Y, INF), O), ValueError, "Y"),
        Bad("increase_in_confidence", lambda: call([0.5, 0.5], O), ValueError, "Y"),
        Bad("paired_bootstrap", lambda: call(with_nan(DROPS), DROPS), ValueError, "a"),
        Bad("paired_bootstrap", lambda: call(DROPS, DROPS[:1]), ValueError, "b"),
        Bad("paired_bootstrap", lambda: call(DROPS, DROPS, images=torch.zeros(len(DROPS))), ValueError, "images"),
        Bad("paired_bootstrap", lambda: call(DROPS, DROPS, resamples=10), ValueError, "resamples"),
        Bad("paired_bootstrap", lambda: call(DROPS, DROPS, level=95), ValueError, "level"),
        Bad("win_percent", lambda: call(with_nan(DROPS), DROPS), ValueError, "drops_a"),
        Bad("win_percent", lambda: call(DROPS, with_nan(DROPS)), ValueError, "drops_b"),
        Bad("win_percent", lambda: call(DROPS, DROPS[:1]), ValueError, "drops_b"),
        Bad("boxes_to_mask", lambda: call(BOX, 4.5), ValueError, "size"),
        Bad("boxes_to_mask", lambda: call(BOX, "4"), TypeError, "size"),
        Bad("boxes_to_mask", lambda: call(with_nan(BOX.double()), 4), ValueError, "boxes"),
        Bad("boxes_to_mask", lambda: call(BOX, 2), ValueError, "boxes"),
        Bad("loc", lambda: call(with_nan(small_map()), BOX, 0.5), ValueError, "cam"),
        Bad("loc", lambda: call(small_map(), BOX, "0.5"), TypeError, "delta"),
        Bad("loc", lambda: call(small_map(), BOX, 1.0), ValueError, "delta"),
        Bad("loc", lambda: call(small_map(), torch.tensor([[0, 0, 5, 2]]), 0.5), ValueError, "boxes"),
        Bad("box_from_map", lambda: call(with_nan(small_map())), ValueError, "cam"),
        Bad("box_from_map", lambda: call(small_map(), 0.0), ValueError, "fraction"),
        Bad("box_from_map", lambda: call(small_map(), None), TypeError, "fraction"),
        Bad("iou", lambda: call(with_nan(BOX[0].double()), BOX[0]), ValueError, "box_a"),
        Bad("iou", lambda: call(BOX[0], "0 0 2 2"), TypeError, "box_b"),
        Bad("iou", lambda: call(BOX[0, :3], BOX[0]), ValueError, "box_a"),
        Bad("mask_iou", lambda: call(with_nan(small_map(), -INF), small_mask(), 0.5), ValueError, "cam"),
        Bad("mask_iou", lambda: call(small_map(), small_mask().float(), 0.5), ValueError, "mask"),
        Bad("mask_iou", lambda: call(small_map(), small_mask(), NAN), ValueError, "delta"),
        Bad("pointing_game", lambda: call(with_nan(small_map()), small_mask()), ValueError, "cam"),
        Bad("pointing_game", lambda: call(small_map(), small_mask(), -1), ValueError, "tolerance"),
        Bad("pointing_game", lambda: call(small_map(), small_mask(), NAN), ValueError, "tolerance"),
        Bad("pointing_game", lambda: call(small_map(), small_mask()[0]), ValueError, "mask"),
        Bad("off_target", lambda: call(with_nan(small_map()), class_masks(), 0), ValueError, "cam"),
        Bad("off_target", lambda: call(small_map(), class_masks(), 2), ValueError, "target"),
        Bad("off_target", lambda: call(small_map(), class_masks(), np.float64(1.0)), TypeError, "target"),
        Bad("off_target", lambda: call(small_map(), small_mask(), 0), ValueError, "masks"),
    ],
    "minicam.apps.train": [
        Bad("predict", lambda: call("shapes_vgg", torch.rand(2, 3, 8, 8)), TypeError, "model"),
        Bad("predict", lambda: call(image_model(), torch.rand(3, 8, 8)), ValueError, "images"),
        Bad("predict", lambda: call(image_model(), with_nan(torch.rand(2, 3, 8, 8))), ValueError, "images"),
        Bad("predict", lambda: call(image_model(), torch.rand(2, 3, 8, 8), batch_size=0), ValueError, "batch_size"),
        Bad("accuracy", lambda: call(image_model(), torch.rand(2, 3, 8, 8), torch.zeros(3, 4)), ValueError, "labels"),
        Bad("accuracy", lambda: call(image_model(), torch.rand(2, 3, 8, 8), torch.zeros(2, 5)), ValueError, "labels"),
        Bad("accuracy", lambda: call(image_model(), with_nan(torch.rand(2, 3, 8, 8)), torch.zeros(2, 4)),
            ValueError, "images"),
        Bad("check_options", lambda: call("vgg"), ValueError, "name"),
        Bad("check_options", lambda: call("shapes_vgg", epochs=0), ValueError, "epochs"),
        Bad("check_options", lambda: call("shapes_vgg", epochs=1000), ValueError, "epochs"),
        Bad("check_options", lambda: call("shapes_vgg", images=-5), ValueError, "images"),
        Bad("check_options", lambda: call("shapes_vgg", seed=1.5), ValueError, "seed"),
        Bad("check_options", lambda: call("shapes_vgg", out=MISSING_DIR), FileNotFoundError, "out"),
        Bad("train", lambda: call("shapes_vgg", epochs=0), ValueError, "epochs", NO_TRAINING),
        Bad("train", lambda: call("shapes_vgg", images=0, out=SCRATCH_OUT), ValueError, "images", NO_TRAINING),
        Bad("train", lambda: call("shapes_vgg", epochs=1, out=MISSING_DIR), FileNotFoundError, "out", NO_TRAINING),
        Bad("report", lambda: call("vgg", image_model()), ValueError, "name", NO_TRAINING),
        Bad("report", lambda: call("shapes_vgg", image_model(), n=0), ValueError, "n", NO_TRAINING),
        Bad("report", lambda: call("shapes_vgg", "model"), TypeError, "model", NO_TRAINING),
        Bad("main", lambda: call(["shapes_vgg", "--epochs", "0", "--out", SCRATCH_OUT]), SystemExit, "epochs",
            NO_TRAINING),
        Bad("main", lambda: call(["shapes_vgg", "--images", "-5", "--out", SCRATCH_OUT]), SystemExit, "images",
            NO_TRAINING),
        Bad("main", lambda: call(["shapes_vgg", "--out", MISSING_DIR]), SystemExit, "out", NO_TRAINING),
        Bad("main", lambda: call(["shapes_vgg", "--report", "0", "--out", SCRATCH_OUT]), SystemExit, "report",
            NO_TRAINING),
    ],
}

# ---- the explorer, its figure, plotting, the evaluation and the models (issue 12, defects 8-11) ----

def explorer_model():
    """A small GAP -> fc CNN in training mode with a .grad, for the explorer's rows."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).train()
    model[4].weight.grad = torch.ones_like(model[4].weight)
    return model


IMAGES8 = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def an_explorer():
    from minicam.suite.widgets import Explorer
    return Explorer(explorer_model(), IMAGES8)


def a_figure():
    from minicam.suite.explorer_figure import ExplorerFigure
    return ExplorerFigure(IMAGES8)


def an_axes():
    import matplotlib.pyplot as plt
    return plt.figure().add_subplot()


def evaluation_pairs():
    from minicam.apps.evaluate import held_out_pairs
    return held_out_pairs(2, 1000)


def a_row(**changes):
    from minicam.apps.evaluate import COLUMNS
    row = {key: 0 for key, _, _ in COLUMNS}
    row.update(model="m", layer="l", method="Grad-CAM", **changes)
    return row


def evaluation_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 4)).eval()


NO_EVALUATION = ("minicam.apps.evaluate.held_out_pairs", "minicam.apps.evaluate.make_shapes", "minicam.apps.evaluate.rows_at")
NO_MAPS = ("minicam.suite.widgets.capture", "minicam.suite.widgets.trace")

BAD_INPUTS["minicam.suite.widgets"] = [
    Bad("Explorer", lambda: call("vgg", IMAGES8), ValueError, "model", NO_MAPS),
    Bad("Explorer", lambda: call(42, IMAGES8), TypeError, "model", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8[0]), ValueError, "images", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), with_nan(IMAGES8)), ValueError, "images", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, class_names="abc"), TypeError, "class_names", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, class_names=["a", "b"]), ValueError, "class_names"),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, methods=["gradcam"]), ValueError, "methods", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, methods=3), TypeError, "methods", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, layers=["9"]), ValueError, "layer"),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, prob="relu"), ValueError, "prob", NO_MAPS),
    Bad("Explorer", lambda: call(explorer_model(), IMAGES8, threads=0), ValueError, "threads", NO_MAPS),
    Bad("Explorer.show", lambda: call(an_explorer(), index=2), IndexError, "index"),
    Bad("Explorer.show", lambda: call(an_explorer(), target=np.int64(3)), ValueError, "target"),
    Bad("Explorer.show", lambda: call(an_explorer(), target=1.0), ValueError, "target"),
    Bad("Explorer.show", lambda: call(an_explorer(), method="gradcam"), ValueError, "method"),
    Bad("Explorer.show", lambda: call(an_explorer(), layer="3"), ValueError, "layer"),
    Bad("Explorer.compute", lambda: call(an_explorer(), "Grad-CAM", "1", 0, -1), ValueError, "index"),
    Bad("explorer", lambda: call("shapes_vg", IMAGES8), ValueError, "model", NO_MAPS),
    Bad("explorer", lambda: call(explorer_model(), IMAGES8, class_names="abc"), TypeError, "class_names", NO_MAPS),
    Bad("default_layers", lambda: call(explorer_model(), IMAGES8[0]), ValueError, "x"),
    Bad("default_layers", lambda: call("vgg", IMAGES8), ValueError, "model"),
]

BAD_INPUTS["minicam.suite.explorer_figure"] = [
    Bad("ExplorerFigure", lambda: call(IMAGES8[0]), ValueError, "images"),
    Bad("ExplorerFigure", lambda: call(with_nan(IMAGES8)), ValueError, "images"),
    Bad("ExplorerFigure.render", lambda: call(a_figure(), 2, torch.rand(4, 4)), IndexError, "index"),
    Bad("ExplorerFigure.render", lambda: call(a_figure(), np.float64(0.0), torch.rand(4, 4)), ValueError, "index"),
    Bad("ExplorerFigure.render", lambda: call(a_figure(), 0, with_nan(torch.rand(4, 4))), ValueError, "raw"),
    Bad("ExplorerFigure.render", lambda: call(a_figure(), 0, torch.rand(4)), ValueError, "raw"),
    Bad("ExplorerFigure.render", lambda: call(a_figure(), 0, None), ValueError, "message"),
    Bad("bar_labels", lambda: call(NAN, 1.0), ValueError, "low"),
    Bad("bar_labels", lambda: call(0.0, "1"), TypeError, "high"),
    Bad("bar_labels", lambda: call(1.0, 0.0), ValueError, "high"),
]

def _claim_kw():
    return dict(question="q?", metric="m", a="A", b="B", model="m", layer="l", sample="held-100", taught_in="zz")


BAD_INPUTS["minicam.suite.claims"] = [
    Bad("paired_claim", lambda: call("bad id", **_claim_kw()), ValueError, "id"),
    Bad("sanity_claim", lambda: call(7, **_claim_kw()), ValueError, "id"),
    Bad("register_sample", lambda: call("", "description"), ValueError, "name"),
    Bad("sample", lambda: call("no-such-sample"), KeyError, "name"),
    Bad("compute", lambda: call("zz.no-such-claim"), KeyError, "id"),
    Bad("values", lambda: call("zz.no-such-claim"), KeyError, "id"),
    Bad("cite", lambda: call(None), KeyError, "id"),
    Bad("main", lambda: call(["--only", "zz.nothing"]), SystemExit, "--only"),
]

BAD_INPUTS["minicam.suite.study"] = [
    Bad("estimate", lambda: call(42), ValueError, "nb"),
    Bad("stated", lambda: call("no-such-notebook.txt"), ValueError, "nb"),
    Bad("line", lambda: call(0), ValueError, "minutes"),
    Bad("main", lambda: call(["no-such-notebook.txt"]), SystemExit, "notebooks"),
]

BAD_INPUTS["minicam.suite.lecture"] = [
    Bad("lecture_hall", lambda: call(["resnet50"]), ValueError, "names"),
    Bad("lecture_hall", lambda: call(["shapes_vgg"], n_images=0), ValueError, "n_images"),
]

BAD_INPUTS["minicam.viz"] = [
    Bad("show_shapes", lambda: call(torch.rand(2, 3, 32, 32)), TypeError, "batch"),
    Bad("show_shapes", lambda: call(shapes_batch(), index=[0, 9]), IndexError, "index"),
    Bad("show_shapes", lambda: call(shapes_batch(), ncols=0), ValueError, "ncols"),
    Bad("show_map", lambda: call([[0.0]], ax=an_axes()), TypeError, "raw"),
    Bad("to_rgb", lambda: call(torch.rand(2, 4, 4)), ValueError, "image"),
    Bad("to_rgb", lambda: call(with_nan(torch.rand(3, 4, 4))), ValueError, "image"),
    Bad("show_map", lambda: call(with_nan(torch.rand(4, 4)), ax=an_axes()), ValueError, "raw"),
    Bad("show_map", lambda: call(torch.rand(1, 4, 4), ax=an_axes()), ValueError, "raw"),
    Bad("show_map", lambda: call(torch.rand(0, 4), ax=an_axes()), ValueError, "raw"),
    Bad("overlay", lambda: call(torch.rand(3, 8, 8), with_nan(torch.rand(2, 2), INF), ax=an_axes()), ValueError, "raw"),
    Bad("overlay", lambda: call(torch.rand(8, 8), torch.rand(2, 2), ax=an_axes()), ValueError, "image"),
    Bad("overlay", lambda: call(torch.rand(3, 8, 8), torch.rand(2, 2), ax=an_axes(), alpha=2), ValueError, "alpha"),
]

BAD_INPUTS["minicam.apps.evaluate"] = [
    Bad("check_options", lambda: call("vgg"), ValueError, "models"),
    Bad("check_options", lambda: call(["shapes_vgg"], seed=-1), ValueError, "seed"),
    Bad("check_options", lambda: call(["shapes_vgg"], n=0), ValueError, "n"),
    Bad("check_options", lambda: call(["shapes_vgg"], layers=[6]), TypeError, "layers"),
    Bad("check_options", lambda: call(["shapes_vgg"], batch_size=2.5), ValueError, "batch_size"),
    Bad("evaluate", lambda: call(["shapes_vgg"], n=2, seed=-1), ValueError, "seed", NO_EVALUATION),
    Bad("evaluate", lambda: call(["shapes_vgg"], n=2, layers=["relu9"]), ValueError, "layer", NO_EVALUATION),
    Bad("evaluate", lambda: call(["shapes_vgg"], n=2, layers="fc"), ValueError, "layer", NO_EVALUATION),
    Bad("evaluate", lambda: call(["shapes_vgg"], n=2, batch_size=0), ValueError, "batch_size", NO_EVALUATION),
    Bad("main", lambda: call(["--seed", "-1"]), SystemExit, "--seed", NO_EVALUATION),
    Bad("main", lambda: call(["--layers", "relu9"]), SystemExit, "--layers", NO_EVALUATION),
    Bad("main", lambda: call(["--n", "0"]), SystemExit, "--n", NO_EVALUATION),
    Bad("main", lambda: call(["--batch-size", "0"]), SystemExit, "--batch-size", NO_EVALUATION),
    Bad("main", lambda: call(["--out", __file__]), SystemExit, "--out", NO_EVALUATION),
    Bad("held_out_pairs", lambda: call(0, 1000), ValueError, "n"),
    Bad("held_out_pairs", lambda: call(2, -1), ValueError, "seed"),
    Bad("score_row", lambda: call(evaluation_model(), IMAGES8, torch.tensor([0, 1]), torch.zeros(2, 4, 8, 8, dtype=torch.bool),
                                  [BOX, BOX], torch.rand(2, 8, 8), torch.rand(3), 10), ValueError, "Y"),
    Bad("score_row", lambda: call(evaluation_model(), IMAGES8, torch.tensor([0, 1]), torch.zeros(2, 4, 8, 8, dtype=torch.bool),
                                  [BOX, BOX], torch.rand(2, 8, 8), torch.rand(2), 0), ValueError, "batch_size"),
    Bad("to_markdown", lambda: call([{"model": "m"}]), ValueError, "rows"),
    Bad("to_markdown", lambda: call(a_row()), TypeError, "rows"),
    Bad("write_csv", lambda: call([a_row()], MISSING_DIR), FileNotFoundError, "path"),
    Bad("report", lambda: call([a_row()], "a note", 2, 1000), TypeError, "notes"),
]

NOT_AN_IMAGE = Path(__file__)   # a Python file: not an image, not a class list of the right length
NO_EXPLAINING = ("minicam.apps.explain._explain", "minicam.apps.explain.load_image")

BAD_INPUTS["minicam.apps.explain"] = [
    Bad("main", lambda: call(["--model", "minicam.models:no_such_function", "--images", __file__, "--out", SCRATCH_OUT]),
        SystemExit, "--model", NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--weights", MISSING_DIR, "--images", __file__, "--out",
                              SCRATCH_OUT]), SystemExit, "--weights", NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "resnet18", "--images", __file__, "--out", SCRATCH_OUT]), SystemExit,
        "--weights", NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--weights", str(NOT_AN_IMAGE), "--images", __file__, "--out",
                              SCRATCH_OUT]), SystemExit, "--weights", NO_EXPLAINING),
    Bad("Preprocess", lambda: call(0), ValueError, "size"),
    Bad("Preprocess", lambda: call(224, std=(0.2, 0.0, 0.2)), ValueError, "std"),
    Bad("Preprocess", lambda: call(224, mean=(0.5, 0.5)), ValueError, "mean"),
    Bad("Preprocess", lambda: call(224, resize=100), ValueError, "resize"),
    Bad("load_image", lambda: call(MISSING_DIR), FileNotFoundError, "path"),
    Bad("load_image", lambda: call(NOT_AN_IMAGE), ValueError, str(NOT_AN_IMAGE)),
    Bad("find_images", lambda: call([MISSING_DIR]), FileNotFoundError, "--images"),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--classes", MISSING_DIR, "--images", __file__, "--out",
                              SCRATCH_OUT]), SystemExit, "--classes", NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "resnet1", "--images", __file__, "--out", SCRATCH_OUT]), SystemExit, "--model",
        NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--images", MISSING_DIR]), SystemExit, "--images", NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--images", __file__, "--top", "0"]), SystemExit, "--top",
        NO_EXPLAINING),
    Bad("main", lambda: call(["--model", "shapes_vgg", "--images", __file__, "--batch-size", "0"]), SystemExit,
        "--batch-size", NO_EXPLAINING),
]

BAD_INPUTS["minicam.models"] = [
    Bad("ShapesVGG", lambda: call(0), ValueError, "num_classes"),
    Bad("ShapesVGG", lambda: call(widths=(8, 8, 8, 8)), ValueError, "widths"),
    Bad("ShapesVGG", lambda: call(widths=(8, 8, 8, 8, 0)), ValueError, "widths[4]"),
    Bad("ShapesVGG", lambda: call(widths="88888"), TypeError, "widths"),
    Bad("ShapesResNet", lambda: call(2.5), ValueError, "num_classes"),
    Bad("shapes_resnet", lambda: call("4"), TypeError, "num_classes"),
    Bad("fold_batchnorm", lambda: call(image_model()), ValueError, "model"),
    Bad("create_model", lambda: call("vgg"), ValueError, "name"),
    Bad("weights_path", lambda: call(None), ValueError, "name"),
    Bad("load_pretrained", lambda: call("resnet50"), ValueError, "name"),
]



def lrp_rule_args(classes=3):
    """(layer, w, b, a, R) of a rule_* call: a Linear 4 -> 3 on 2 inputs, R with `classes` columns."""
    torch.manual_seed(0)
    return (lambda x, v: torch.nn.functional.linear(x, v)), torch.randn(3, 4), torch.zeros(3), torch.rand(2, 4), \
        torch.rand(2, classes)


def lrp_walk_args(records=None, classes=4):
    """(steps, records, R) of a walk through image_model() on 2 images, cut to `records` records."""
    from minicam.lrp import _forward, plan
    steps = plan(image_model().eval(), rule="zero")
    _, recorded = _forward(steps, torch.rand(2, 3, 8, 8))
    return steps, recorded[:records], torch.rand(2, classes)


X8 = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
BAD_INPUTS["minicam.lrp"] = [
    Bad("contrastive_start", lambda: call(torch.rand(2, 3), 0, kind="clrp"), ValueError, "kind"),
    Bad("contrastive_start", lambda: call(torch.rand(2, 1), 0), ValueError, "scores"),
    Bad("contrastive_start", lambda: call(torch.rand(2, 3), 3), ValueError, "target"),
    Bad("lrp", lambda: call("shapes_vgg", X8, 0), TypeError, "model"),
    Bad("lrp", lambda: call(image_model(), with_nan(X8), 0), ValueError, "x"),
    Bad("lrp", lambda: call(image_model(), with_nan(X8, INF), 0), ValueError, "x"),
    Bad("lrp", lambda: call(image_model(), X8[0], 0), ValueError, "x"),
    Bad("lrp", lambda: call(image_model(), X8, np.float64(1.0)), TypeError, "target"),
    Bad("lrp", lambda: call(image_model(), X8, [0, 4]), ValueError, "target"),
    Bad("lrp", lambda: call(image_model(), X8, 0, rule="lrp0"), ValueError, "rule"),
    Bad("lrp", lambda: call(image_model(), X8, 0, layer=3), TypeError, "layer"),
    Bad("lrp", lambda: call(image_model(), X8, 0, rule="epsilon", eps=NAN), ValueError, "eps"),
    Bad("lrp", lambda: call(image_model(), X8, 0, rule="epsilon", eps="0.1"), TypeError, "eps"),
    Bad("lrp", lambda: call(image_model(), X8, 0, rule="gamma", gamma=INF), ValueError, "gamma"),
    Bad("lrp", lambda: call(image_model(), X8, 0, first_rule="zb", bounds=(1.0, 0.0)), ValueError, "bounds"),
    Bad("lrp", lambda: call(image_model(), X8, 0, start="clrp"), ValueError, "start"),
    Bad("relevance_cam", lambda: call(image_model(), X8, 0, None), TypeError, "layer"),
    Bad("relevance_cam", lambda: call(image_model(), X8, 0, "2"), ValueError, "layer"),
    Bad("relevance_cam", lambda: call(image_model(), with_nan(X8), 0, "0"), ValueError, "x"),
    Bad("relevance_cam", lambda: call(image_model(), X8, 9, "0"), ValueError, "target"),
    Bad("relevance_cam", lambda: call(image_model(), X8, 0, "0", start="clrp"), ValueError, "start"),
    Bad("relevance_cam", lambda: call(image_model(), X8, 0, "0", first_rule="zb", bounds=(0.0, NAN)), ValueError,
        "bounds"),
]


def relu_model():
    """conv "0" -> ReLU "1" -> GAP "2" -> flatten "3" -> fc "4", in training mode with a .grad set."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model[4].weight.grad = torch.ones_like(model[4].weight)
    return model.train()


X8 = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
ACTS, GRADS = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)


def relu_capture():
    from minicam.hooks import capture
    return capture(relu_model(), X8, [0, 1], "1")


def no_graph_scores():
    return torch.rand(2, 3), torch.tensor([0, 1]), torch.rand(2, 3, requires_grad=True)


BAD_INPUTS["minicam.checks"] = [
    Bad("check_images", lambda: call(with_nan(X8)), ValueError, "x"),
    Bad("check_images", lambda: call(with_nan(X8, -INF)), ValueError, "x"),
    Bad("check_images", lambda: call(X8.tolist()), TypeError, "x"),
    Bad("check_finite", lambda: call(with_nan(CAMS2), "cams"), ValueError, "cams"),
    Bad("check_finite", lambda: call([0.5], "cams"), TypeError, "cams"),
    Bad("check_targets", lambda: call(np.array([0.5, 1.0]), 2, 3), TypeError, "target"),
    Bad("check_targets", lambda: call(np.int64(3), 2, 3), ValueError, "target"),
    Bad("check_targets", lambda: call("12", 2, 3), TypeError, "target"),
    Bad("check_model", lambda: call("shapes_vgg"), TypeError, "model"),
    Bad("resolve_layer", lambda: call(relu_model(), "relu"), ValueError, "layer"),
    Bad("resolve_layer", lambda: call(relu_model(), 1), TypeError, "layer"),
    Bad("resolve_layer", lambda: call("shapes_vgg", "1"), TypeError, "model"),
    Bad("whole_number", lambda: call(1.5, "n"), ValueError, "n"),
    Bad("check_number", lambda: call("0.5", "alpha", "a number in [0, 1]"), TypeError, "alpha"),
    Bad("check_number", lambda: call(NAN, "alpha", "a number in [0, 1]"), ValueError, "alpha"),
    Bad("check_model", lambda: call(torch.jit.script(nn.Linear(2, 2))), TypeError, "model"),
    Bad("check_model", lambda: call(nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False))), NotApplicable,
        "model"),
    Bad("check_targets", lambda: call(2 ** 63, 2, 3), ValueError, "target"),
    Bad("check_targets", lambda: call(torch.tensor([1 + 0j]), 1, 3), TypeError, "target"),
    Bad("pixel_size", lambda: call("4"), TypeError, "size"),
]
BAD_INPUTS["minicam.hooks"] = [
    Bad("capture", lambda: call(relu_model(), with_nan(X8), 0, "1"), ValueError, "x"),
    Bad("capture", lambda: call(relu_model(), X8, np.float64(1.0), "1"), TypeError, "target"),
    Bad("capture", lambda: call(relu_model(), X8, 0, "relu"), ValueError, "layer"),
    Bad("forward_acts", lambda: call(relu_model(), X8, 1), TypeError, "layers"),
    Bad("forward_acts", lambda: call(relu_model(), X8, ["1", "relu"]), ValueError, "layer"),
    Bad("explainable_layers", lambda: call(relu_model(), with_nan(X8)), ValueError, "x"),
    Bad("explainable_layers", lambda: call("shapes_vgg", X8), TypeError, "model"),
    Bad("default_layer", lambda: call(relu_model(), X8[0]), ValueError, "x"),
    Bad("default_layer", lambda: call(nn.Sequential(nn.Flatten(), nn.Linear(192, 2)), X8), NotApplicable, "layer"),
]
BAD_INPUTS["minicam.gradients"] = [
    Bad("gradcam_weights", lambda: call(torch.rand(2, 5)), NotApplicable, "grads"),
    Bad("gradcampp_alphas", lambda: call(ACTS, GRADS[..., :3]), ValueError, "grads"),
    Bad("gradcampp_weights", lambda: call(torch.rand(2, 5), torch.rand(2, 5)), NotApplicable, "acts"),
    Bad("weighted_sum", lambda: call(torch.rand(2, 4), ACTS), ValueError, "weights"),
    Bad("weighted_sum", lambda: call(torch.rand(2, 3), torch.rand(2, 3)), NotApplicable, "acts"),
    Bad("saliency", lambda: call(relu_model(), with_nan(X8, INF), 0), ValueError, "x"),
    Bad("saliency", lambda: call(relu_model(), X8, 3), ValueError, "target"),
    Bad("class_model", lambda: call(relu_model(), 0, (3, 8)), ValueError, "shape"),
    Bad("class_model", lambda: call(relu_model(), 0, (3, 8, 8.5)), ValueError, "shape[2]"),
    Bad("class_model", lambda: call(relu_model(), 0, (3, 8, 8), steps=-1), ValueError, "steps"),
    Bad("class_model", lambda: call(relu_model(), 0, (3, 8, 8), lr=NAN), ValueError, "lr"),
    Bad("class_model", lambda: call(relu_model(), 0, (3, 8, 8), l2="0.1"), TypeError, "l2"),
    Bad("class_model", lambda: call(relu_model(), 3, (3, 8, 8), steps=1), ValueError, "target"),
    Bad("cam", lambda: call(relu_model(), X8, 0, "1", fc="2"), NotApplicable, "fc"),
    Bad("cam", lambda: call(relu_model(), X8, 0, "3"), NotApplicable, "layer"),
    Bad("cam", lambda: call(relu_model(), with_nan(X8), 0, "1"), ValueError, "x"),
    Bad("gradcam", lambda: call(relu_model(), X8, 0, "3"), NotApplicable, "layer"),
    Bad("gradcam", lambda: call(relu_model(), X8, 0, "1", counterfactual="yes"), TypeError, "counterfactual"),
    Bad("gradcam", lambda: call(relu_model(), X8, [0, 1, 2], "1"), ValueError, "target"),
    Bad("gradcam_pp", lambda: call(relu_model(), X8, 0, "4"), NotApplicable, "layer"),
    Bad("gradcam_pp", lambda: call(relu_model(), X8[0], 0, "1"), ValueError, "x"),
    Bad("guided_backprop", lambda: call(tiny_model(), X2, 0), NotApplicable, "model"),
    Bad("guided_backprop", lambda: call(relu_model(), with_nan(X8), 0), ValueError, "x"),
    Bad("guided_gradcam", lambda: call(relu_model(), with_nan(X8), 0, "1"), ValueError, "x"),
    Bad("guided_gradcam", lambda: call(relu_model(), X8, 0, "3"), NotApplicable, "layer"),
]
BAD_INPUTS["minicam.methods"] = [
    Bad("Method.__call__", lambda: call(method("Grad-CAM"), relu_model(), X8, 0, "3"), NotApplicable, "layer"),
    Bad("Method.__call__", lambda: call(method("LRP"), relu_model(), with_nan(X8), 0), ValueError, "x"),
    Bad("Method.from_capture", lambda: call(method("saliency"), relu_model(), "1", relu_capture(), [0, 1]),
        TypeError, "cap"),
    Bad("Method.from_capture", lambda: call(method("Grad-CAM"), relu_model(), "1", "cap", [0, 1]), TypeError, "cap"),
    Bad("Method.from_capture", lambda: call(method("CAM"), relu_model(), "1", relu_capture(), [0, 1, 2]),
        ValueError, "target"),
    Bad("Method.from_capture", lambda: call(method("Grad-CAM"), relu_model(), "1", relu_capture(), [1, 0]),
        ValueError, "targets"),
]


def method(name):
    from minicam.methods import METHODS
    return METHODS[name]


# ---- deletion and insertion (RISE), the sanity checks (Adebayo et al.) and the chance rate (issue 15) ----

def gap_model():
    """x (N, 1, H, W) -> 2 logits through GAP, in training mode with a .grad set."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2)).train()
    model[2].weight.grad = torch.ones_like(model[2].weight)
    return model


FRACTIONS = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
NO_CURVE = ("minicam.metrics.target_probs",)
BAD_INPUTS["minicam.metrics"] += [
    Bad("peak", lambda: call(with_nan(small_map())), ValueError, "cam"),
    Bad("peak", lambda: call(torch.rand(2, 2, 2)), ValueError, "cam"),
    Bad("gaussian_blur", lambda: call(X2, 0.0), ValueError, "sigma"),
    Bad("gaussian_blur", lambda: call(X2, "2"), TypeError, "sigma"),
    Bad("gaussian_blur", lambda: call(with_nan(X2), 1.0), ValueError, "x"),
    Bad("deletion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 0), ValueError, "step", NO_CURVE),
    Bad("deletion_curve", lambda: call(gap_model(), X2, CAMS2[:1], 0, 1), ValueError, "cam", NO_CURVE),
    Bad("deletion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 1, baseline="grey"), ValueError, "baseline",
        NO_CURVE),
    Bad("deletion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 1, sigma=-1.0), ValueError, "sigma", NO_CURVE),
    Bad("deletion_curve", lambda: call(gap_model(), X2, CAMS2, 2, 1), ValueError, "target", NO_CURVE),
    Bad("insertion_curve", lambda: call(gap_model(), X2, with_nan(CAMS2), 0, 1), ValueError, "cam", NO_CURVE),
    Bad("insertion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 1, baseline=INF), ValueError, "baseline",
        NO_CURVE),
    Bad("insertion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 2.5), ValueError, "step", NO_CURVE),
    Bad("insertion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 1, prob="probit"), ValueError, "prob", NO_CURVE),
    Bad("insertion_curve", lambda: call(gap_model(), X2, CAMS2, 0, 1, batch_size=0), ValueError, "batch_size",
        NO_CURVE),
    Bad("curve_auc", lambda: call(FRACTIONS.flip(0), torch.rand(3)), ValueError, "fractions"),
    Bad("curve_auc", lambda: call(FRACTIONS, torch.rand(2, 4)), ValueError, "scores"),
    Bad("curve_auc", lambda: call(FRACTIONS, with_nan(torch.rand(3))), ValueError, "scores"),
]

NO_MAPS_YET = ("minicam.sanity._maps",)
RHO = torch.tensor([0.1, 0.3, -0.2])
BAD_INPUTS["minicam.sanity"] = [
    Bad("cascade_layers", lambda: call("shapes_vgg"), TypeError, "model"),
    Bad("cascade_layers", lambda: call(nn.Sequential(nn.ReLU())), ValueError, "model"),
    Bad("randomized", lambda: call(relu_model(), ["1"]), ValueError, "layers"),
    Bad("randomized", lambda: call(relu_model(), "4"), TypeError, "layers"),
    Bad("randomized", lambda: call(relu_model(), ["4", "4"]), ValueError, "layers"),
    Bad("randomized", lambda: call(relu_model(), ["fc"]), ValueError, "layer"),
    Bad("randomized", lambda: call(relu_model(), ["4"], seed=-1), ValueError, "seed"),
    Bad("randomized", lambda: call(relu_model(), ["4"], seed=1.5), ValueError, "seed"),
    Bad("cascade", lambda: call(relu_model(), layers=[]), TypeError, "layers"),
    Bad("cascade", lambda: call(relu_model(), layers=["0"], seed="0"), TypeError, "seed"),
    Bad("pixel_maps", lambda: call(torch.rand(4, 4), 4), ValueError, "maps"),
    Bad("pixel_maps", lambda: call(with_nan(torch.rand(2, 4, 4)), 4), ValueError, "maps"),
    Bad("pixel_maps", lambda: call(torch.rand(2, 3, 4, 4), 8), ValueError, "size"),
    Bad("pixel_maps", lambda: call(torch.rand(2, 4, 4), "8"), TypeError, "size"),
    Bad("compare_maps", lambda: call(torch.rand(2, 4, 4), torch.rand(3, 4, 4), 8), ValueError, "other"),
    Bad("compare_maps", lambda: call(torch.rand(2, 2, 2), torch.rand(2, 2, 2), 2), ValueError, "size"),
    Bad("compare_maps", lambda: call(torch.rand(2, 4, 4), [[0.0]], 4), ValueError, "maps"),
    Bad("cascading_randomization", lambda: call(relu_model(), X8, 0, ["gradcam"], "1"), ValueError, "methods",
        NO_MAPS_YET),
    Bad("cascading_randomization", lambda: call(relu_model(), X8, 0, "Grad-CAM", "1"), TypeError, "methods",
        NO_MAPS_YET),
    Bad("cascading_randomization", lambda: call(relu_model(), X8[0], 0, ["Grad-CAM"], "1"), ValueError, "x",
        NO_MAPS_YET),
    Bad("cascading_randomization", lambda: call(relu_model(), X8, 0, ["Grad-CAM"], "1", layers=["1"]),
        ValueError, "layers", NO_MAPS_YET),
    Bad("cascading_randomization", lambda: call(relu_model(), X8, 3, ["Grad-CAM"], "1"), ValueError, "target"),
    Bad("data_randomization", lambda: call(relu_model(), "shapes_vgg_shuffled", X8, 0, ["saliency"]), TypeError,
        "control", NO_MAPS_YET),
    Bad("data_randomization", lambda: call(relu_model(), relu_model(), X8, 0, []), TypeError, "methods",
        NO_MAPS_YET),
    Bad("compare_models", lambda: call(relu_model(), [relu_model()], X8, 0, ["saliency"]), TypeError, "others",
        NO_MAPS_YET),
    Bad("compare_models", lambda: call(relu_model(), {"random": "relu_model"}, X8, 0, ["saliency"]), TypeError,
        "others", NO_MAPS_YET),
    Bad("compare_models", lambda: call(relu_model(), {"random": relu_model()}, X8[0], 0, ["saliency"]), ValueError,
        "x", NO_MAPS_YET),
    Bad("randomization_verdict", lambda: call(torch.tensor([1.5])), ValueError, "rho"),
    Bad("randomization_verdict", lambda: call(RHO.tolist()), ValueError, "rho"),
    Bad("randomization_verdict", lambda: call(RHO, threshold=0.0), ValueError, "threshold"),
    Bad("randomization_verdict", lambda: call(RHO, images=[0, 1]), ValueError, "images"),
]

BAD_INPUTS["minicam.apps.train"] += [
    Bad("majority_rate", lambda: call(torch.zeros(4)), ValueError, "labels"),
    Bad("majority_rate", lambda: call(torch.full((3, 4), 0.5)), ValueError, "labels"),
    Bad("majority_rate", lambda: call(torch.zeros(0, 4)), ValueError, "labels"),
]

# An error message must also say what would be right: one of these words or phrases.
ADVICE = re.compile(r"\b(must|give|pass|use|choose|create|compare|needs?|expects?|should|look at|"
                    r"at least|one of|upsample)\b")


def public_callables(module) -> set[str]:
    """The functions and classes of the module's __all__ a user calls with arguments: not the records the
    library builds (Capture, tuples) and not exceptions."""
    return {name for name in module.__all__ if callable(obj := getattr(module, name)) and not (
        inspect.isclass(obj) and issubclass(obj, (BaseException, tuple))) and obj.__module__ == module.__name__}


def modules_of_minicam() -> list[str]:
    """Every module of the package: the library, minicam.suite and minicam.apps (not __main__, a launcher)."""
    import minicam
    root = Path(minicam.__file__).parent
    return sorted("minicam" + "".join(f".{part}" for part in path.relative_to(root).with_suffix("").parts)
                  .replace(".__init__", "") for path in root.rglob("*.py") if path.name != "__main__.py")


def resolve(module_name: str, function: str):
    obj = importlib.import_module(module_name)
    for part in function.split("."):
        obj = getattr(obj, part)
    return obj


def snapshot(value):
    """A copy of everything a call could change in its arguments."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, nn.Module):
        return ([m.training for m in value.modules()],
                [(p.detach().clone(), p.requires_grad, None if p.grad is None else p.grad.clone())
                 for p in value.parameters()])
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return repr(value)


def assert_same(before, after, where):
    if isinstance(before, torch.Tensor):
        torch.testing.assert_close(after, before, rtol=0, atol=0, equal_nan=True, msg=f"{where} changed")
    elif isinstance(before, (list, tuple)):
        assert len(before) == len(after), where
        for i, (b, a) in enumerate(zip(before, after)):
            assert_same(b, a, f"{where}[{i}]")
    elif isinstance(before, dict):
        for k in before:
            assert_same(before[k], after[k], f"{where}[{k!r}]")
    else:
        assert before == after, f"{where} changed: {before} -> {after}"


ROWS = [pytest.param(module, row, id=f"{module.split('.')[-1]}.{row.function}-{i}")
        for module, rows in BAD_INPUTS.items() for i, row in enumerate(rows)]


@pytest.mark.parametrize("module, row", ROWS)
def test_bad_input_is_a_named_error_and_changes_nothing(module, row, monkeypatch, capsys):
    for target in row.forbid:
        owner, attr = target.rsplit(".", 1)

        def forbidden(*args, _name=target, **kwargs):
            raise AssertionError(f"{_name} ran before the bad argument was refused")
        monkeypatch.setattr(importlib.import_module(owner), attr, forbidden)
    function = resolve(module, row.function)
    args, kwargs = row.make()
    before, grad_mode = snapshot((args, kwargs)), torch.is_grad_enabled()

    with pytest.raises(row.error) as err:
        function(*args, **kwargs)

    if row.error is SystemExit:   # a command line: argparse's usage and message on stderr, exit status 2
        assert err.value.code == 2
        message = capsys.readouterr().err
        assert message.startswith("usage:") and "Traceback" not in message
    else:
        message = str(err.value)
    assert re.search(rf"(?<![\w]){re.escape(row.arg)}(?![\w])", message), \
        f"the message does not name {row.arg!r}: {message}"
    assert ADVICE.search(message), f"the message does not say what would be right: {message}"
    assert_same(before, snapshot((args, kwargs)), "the arguments")
    assert torch.is_grad_enabled() == grad_mode


@pytest.mark.parametrize("module", sorted(BAD_INPUTS))
def test_every_public_function_has_a_row(module):
    public = public_callables(importlib.import_module(module))
    covered = {row.function.split(".")[0] for row in BAD_INPUTS[module]}
    assert public - covered == set(), f"public functions of {module} without a bad-input row"
    assert covered <= public, f"rows for names that are not public in {module}: {covered - public}"


def test_every_module_declares_all_and_the_table_walks_every_module_with_an_edge():
    for name in modules_of_minicam():
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} declares no __all__"
        if public_callables(module) - {"COMMANDS"}:
            assert name in BAD_INPUTS, f"{name} has functions in __all__ but no bad-input rows"


def test_a_new_function_without_a_row_is_caught(monkeypatch):
    import minicam.maps

    def smooth(maps):
        return maps
    smooth.__module__ = "minicam.maps"
    monkeypatch.setattr(minicam.maps, "smooth", smooth, raising=False)
    monkeypatch.setattr(minicam.maps, "__all__", minicam.maps.__all__ + ["smooth"])
    with pytest.raises(AssertionError, match="smooth"):
        test_every_public_function_has_a_row("minicam.maps")
