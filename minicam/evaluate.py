"""`python -m minicam.evaluate`: every map method, on a few layers of each shipped shapes model, scored
with `minicam.metrics` on held-out images. Writes the table as Markdown and CSV (`--out`, default
results/) and prints the Markdown.

Every (image, present class) pair is one explanation: the shapes models are multi-label, so each class
in an image is explained on its own, and its probability is the sigmoid of its score. Images come from
`make_shapes(n, seed)` with the held-out seed 1000 (training used seeds 0, 1, 2, ...).

Columns (mean over pairs unless said otherwise):
  Average Drop %, % Increase in Confidence  Grad-CAM++'s faithfulness metrics, on E = L o I
  Win % vs Grad-CAM  against Grad-CAM at the same model and layer (ties count half; Grad-CAM scores 50)
  Loc(delta)         Grad-CAM++ eq. 26 against the target class's boxes
  Pointing %         the map's maximum on the target's mask (no tolerance)
  Box IoU            box_from_map(0.15), Grad-CAM's protocol, against the best-matching target box
  mIoU               map above 0.5 (after min-max) against the target's mask
  Off-target         share of the map's positive mass on objects of other classes
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import metrics, models
from .checks import NotApplicable, resolve_layer
from .data import make_shapes
from .hooks import capture
from .maps import upsample
from .methods import METHODS

# A shallow block and the last one of each model: CAM is defined only at the last (GAP -> fc), and the
# shallow one is where Relevance-CAM claims to beat Grad-CAM. Two layers keep the default run short.
LAYERS = {
    "shapes_vgg": ("relu2", "relu6"),
    "shapes_vgg_biased": ("relu2", "relu6"),
    "shapes_resnet": ("layer2", "layer4"),
}
EVALUATED = ("Grad-CAM", "Grad-CAM++", "CAM", "Relevance-CAM")  # names in minicam.methods.METHODS, in row order
DELTAS = (0.0, 0.25, 0.5)
BOX_FRACTION = 0.15   # Grad-CAM's threshold (CAM used 0.20)
MASK_DELTA = 0.5

COLUMNS = [  # (csv name, Markdown header, format)
    ("model", "model", "{}"), ("layer", "layer", "{}"), ("method", "method", "{}"), ("pairs", "pairs", "{}"),
    ("avg_drop", "Avg Drop % ↓", "{:.2f}"), ("incr_conf", "Incr. Conf. % ↑", "{:.2f}"),
    ("win_vs_gradcam", "Win % vs Grad-CAM ↑", "{:.2f}"),
    ("loc_0", "Loc(0) ↑", "{:.3f}"), ("loc_0.25", "Loc(0.25) ↑", "{:.3f}"), ("loc_0.5", "Loc(0.5) ↑", "{:.3f}"),
    ("pointing", "Pointing % ↑", "{:.1f}"), ("box_iou", "Box IoU ↑", "{:.3f}"),
    ("miou", "mIoU ↑", "{:.3f}"), ("off_target", "Off-target ↓", "{:.3f}"),
]


def method_maps(model, x, targets, layer, methods=EVALUATED) -> dict:
    """{method: raw maps (N, h, w)} at `layer` for images x and targets (N,): the CAM family from one
    forward/backward pass (`Method.from_capture`), the others by their own call. A method that does not
    apply here maps to its NotApplicable instead."""
    cap = capture(model, x, targets, layer) if any(METHODS[m].weights for m in methods) else None
    maps = {}
    for name in methods:
        method = METHODS[name]
        try:
            maps[name] = (method.from_capture(model, layer, cap, targets) if method.weights
                          else method(model, x, targets, layer))
        except NotApplicable as err:
            maps[name] = err
    return maps


def gradient_maps(model, x, target, layer) -> dict:
    """Grad-CAM and Grad-CAM++ (N, h, w) from one forward/backward pass (`method_maps` of the two)."""
    return method_maps(model, x, target, layer, ("Grad-CAM", "Grad-CAM++"))


def in_batches(f, batch_size, *tensors):
    """f applied to consecutive slices of the tensors; f returns a dict of tensors, concatenated.
    A key whose value is an exception in any slice keeps the first such exception."""
    parts = [f(*(t[i:i + batch_size] for t in tensors)) for i in range(0, len(tensors[0]), batch_size)]
    out = {}
    for key in parts[0]:
        failed = [p[key] for p in parts if isinstance(p[key], Exception)]
        out[key] = failed[0] if failed else torch.cat([p[key] for p in parts])
    return out


def _localisation(maps, boxes) -> tuple[dict, float]:
    """({"loc_<delta>": mean Loc(delta)} and the mean box IoU of the maps (P, H, W) against boxes."""
    locs = {d: [] for d in DELTAS}
    box_ious = []
    for m, class_boxes in zip(maps, boxes):
        for d in DELTAS:
            locs[d].append(metrics.loc(m, class_boxes, d))
        box_ious.append(metrics.iou(metrics.box_from_map(m, BOX_FRACTION), class_boxes).max().item())
    return {f"loc_{d:g}": sum(v) / len(v) for d, v in locs.items()}, sum(box_ious) / len(box_ious)


def score_row(model, images, targets, masks, boxes, raw, Y, batch_size) -> dict:
    """Every metric of one method at one layer, over P pairs. images (P, 3, H, W), targets (P,),
    masks (P, K, H, W), boxes: P tensors (M, 4) of the target class, raw (P, h, w), Y (P,)."""
    O = in_batches(lambda x, r, t: {"O": metrics.target_probs(model, metrics.explanation_map(r, x), t, "sigmoid")},
                   batch_size, images, raw, targets)["O"]
    maps = upsample(raw, images.shape[-2:])
    own = masks[torch.arange(len(targets)), targets]
    locs, box_iou = _localisation(maps, boxes)
    return {
        "pairs": len(targets),
        "avg_drop": metrics.average_drop(Y, O),
        "incr_conf": metrics.increase_in_confidence(Y, O),
        "drops": metrics.confidence_drop(Y, O),
        **locs,
        "pointing": 100 * metrics.pointing_game(maps, own).double().mean().item(),
        "box_iou": box_iou,
        "miou": metrics.mask_iou(maps, own, MASK_DELTA).mean().item(),
        "off_target": metrics.off_target(maps, masks, targets).mean().item(),
    }


def held_out_pairs(n: int, seed: int) -> dict:
    """Every (image, present class) pair of make_shapes(n, seed): images, classes, masks and the boxes
    of each pair's class."""
    data = make_shapes(n, seed)
    img, cls = data.labels.nonzero(as_tuple=True)
    boxes = [data.boxes[i][data.box_classes[i] == c] for i, c in zip(img.tolist(), cls.tolist())]
    return {"images": data.images[img], "classes": cls, "masks": data.masks[img], "boxes": boxes}


def load_models(names, layers=None) -> tuple[dict, list[str]]:
    """The shipped models that load, and notes on those that do not. A misspelt layer stops the run
    before it starts instead of becoming a note."""
    loaded, missing = {}, []
    for name in names:
        try:
            loaded[name] = models.load_pretrained(name)
        except FileNotFoundError as err:  # one missing checkpoint should not cost the other rows
            missing.append(f"{name} skipped: {err}")
    if not loaded:
        raise FileNotFoundError("no model could be loaded: " + "; ".join(missing))
    for name, model in loaded.items():
        for layer in layers or LAYERS[name]:
            try:
                resolve_layer(model, layer)
            except ValueError as err:
                raise ValueError(f"in model {name!r}: {err}") from None
    return loaded, missing


def rows_at(model, name: str, layer: str, pairs: dict, Y, batch_size: int, notes: list) -> list[dict]:
    """The table's rows of one model at one layer; a method that does not apply is left out (CAM away
    from GAP -> fc silently, as the table says once; any other with a note)."""
    x, cls = pairs["images"], pairs["classes"]
    raw = in_batches(lambda xs, ts: method_maps(model, xs, ts, layer), batch_size, x, cls)
    scored = {}
    for method, maps in raw.items():
        if isinstance(maps, NotApplicable):
            if not METHODS[method].needs_gap_fc:
                first_line = str(maps).splitlines()[0] if str(maps) else type(maps).__name__
                notes.append(f"{method} not run on {name} at {layer}: {first_line}")
            continue
        scored[method] = score_row(model, x, cls, pairs["masks"], pairs["boxes"], maps, Y, batch_size)
    reference = scored["Grad-CAM"]["drops"]
    rows = []
    for method, row in scored.items():
        win = metrics.win_percent(row.pop("drops"), reference)
        rows.append({"model": name, "layer": layer, "method": method, **row, "win_vs_gradcam": win})
    return rows


def evaluate(models, n=500, seed=1000, layers=None, batch_size=100, progress=True):
    """Rows of the table (dicts keyed by COLUMNS' csv names) and notes on what could not be run."""
    pairs = held_out_pairs(n, seed)
    loaded, notes = load_models(models, layers)
    plan = [(name, layer) for name in loaded for layer in (layers or LAYERS[name])]
    rows, Y = [], {}
    bar = tqdm(plan, desc="evaluate", disable=not progress, file=sys.stderr)
    for name, layer in bar:
        model = loaded[name]
        if name not in Y:  # the score on the whole image is the same for every method and layer
            Y[name] = in_batches(lambda x, t: {"Y": metrics.target_probs(model, x, t, "sigmoid")},
                                 batch_size, pairs["images"], pairs["classes"])["Y"]
        bar.set_postfix_str(f"{name} {layer}")
        rows += rows_at(model, name, layer, pairs, Y[name], batch_size, notes)
    bar.close()
    return rows, notes


def to_markdown(rows) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def write_csv(rows, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[key for key, _, _ in COLUMNS])
        writer.writeheader()
        writer.writerows({key: row[key] for key, _, _ in COLUMNS} for row in rows)


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m minicam.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="held-out images (default 500)")
    parser.add_argument("--seed", type=int, default=1000, help="make_shapes seed (default 1000, held out)")
    parser.add_argument("--models", nargs="+", default=list(models.PRETRAINED),
                        choices=list(models.PRETRAINED))
    parser.add_argument("--layers", nargs="+", help="layer names valid in every chosen model "
                        "(default: a shallow block and the last one of each)")
    parser.add_argument("--batch-size", type=int, default=100, help="pairs per model call")
    parser.add_argument("--out", type=Path, default=Path("results"), help="directory for metrics.md and metrics.csv")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.n < 1 or args.batch_size < 1:
        parser.error("--n and --batch-size must be positive")
    return args


def report(rows, notes, n: int, seed: int) -> str:
    """The Markdown report: a title, the table, how to read it, and the notes."""
    pairs = rows[0]["pairs"] if rows else 0
    return "\n".join([
        f"# minicam evaluation: {n} held-out shapes images (seed {seed}), {pairs} (image, class) pairs",
        "",
        to_markdown(rows),
        "",
        "Probabilities are sigmoids (multi-label models). Win % is against Grad-CAM at the same model and "
        f"layer, ties counted half. Loc(δ): Grad-CAM++ eq. 26. Box IoU: box_from_map({BOX_FRACTION}), "
        f"8-connected. mIoU: normalised map > {MASK_DELTA} vs the class mask. Off-target: share of relu(map) "
        "on other classes' objects. CAM appears only where its layer feeds GAP → fc (elsewhere minicam.cam "
        "refuses).",
        *(f"- {note}" for note in notes),
    ]) + "\n"


def main(argv=None):
    args = _arguments(argv)
    start = time.perf_counter()
    rows, notes = evaluate(args.models, args.n, args.seed, args.layers, args.batch_size, not args.quiet)
    seconds = time.perf_counter() - start
    text = report(rows, notes, args.n, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.md").write_text(text)  # no timing in the file, so a rerun reproduces it exactly
    write_csv(rows, args.out / "metrics.csv")
    print(text)
    print(f"runtime {seconds:.0f} s on {torch.get_num_threads()} CPU threads; wrote {args.out / 'metrics.md'} "
          f"and {args.out / 'metrics.csv'}")
    return rows


if __name__ == "__main__":
    main()
