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

from .gradients import cam, gradcam_weights, gradcampp_weights, weighted_sum
from .hooks import capture, resolve_layer
from .maps import upsample
from . import metrics

# A shallow block and the last one of each model: CAM is defined only at the last (GAP -> fc), and the
# shallow one is where Relevance-CAM claims to beat Grad-CAM. Two layers keep the default run short.
LAYERS = {
    "shapes_vgg": ("relu2", "relu6"),
    "shapes_vgg_biased": ("relu2", "relu6"),
    "shapes_resnet": ("layer2", "layer4"),
}
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


def gradient_maps(model, x, target, layer) -> dict:
    """Grad-CAM and Grad-CAM++ (N, h, w) from one forward/backward pass: the bodies of `minicam.gradcam`
    and `minicam.gradcam_pp`, which would each repeat the same `capture`."""
    _, acts, grads = capture(model, x, target, layer)
    return {"Grad-CAM": weighted_sum(gradcam_weights(grads), acts),
            "Grad-CAM++": weighted_sum(gradcampp_weights(acts, grads), acts)}


def other_methods() -> tuple[dict, str | None]:
    """The methods besides the gradient pair, each f(model, x, target, layer) -> raw maps (N, h, w),
    and a note when Relevance-CAM could not be imported."""
    methods = {"CAM": lambda model, x, target, layer: {"CAM": cam(model, x, target, layer, "fc")}}
    try:
        from .lrp import relevance_cam
    except ImportError as err:
        return methods, f"Relevance-CAM is missing: minicam.lrp could not be imported ({err})."
    methods["Relevance-CAM"] = lambda model, x, target, layer: {"Relevance-CAM": relevance_cam(model, x, target, layer)}
    return methods, None


def in_batches(f, batch_size, *tensors):
    """f applied to consecutive slices of the tensors; f returns a dict of tensors, concatenated."""
    parts = [f(*(t[i:i + batch_size] for t in tensors)) for i in range(0, len(tensors[0]), batch_size)]
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def score_row(model, images, targets, masks, boxes, raw, Y, batch_size) -> dict:
    """Every metric of one method at one layer, over P pairs. images (P, 3, H, W), targets (P,),
    masks (P, K, H, W), boxes: P tensors (M, 4) of the target class, raw (P, h, w), Y (P,)."""
    O = in_batches(lambda x, r, t: {"O": metrics.target_probs(model, metrics.explanation_map(r, x), t, "sigmoid")},
                   batch_size, images, raw, targets)["O"]
    maps = upsample(raw, images.shape[-2:])
    own = masks[torch.arange(len(targets)), targets]
    locs = {d: [] for d in DELTAS}
    box_ious = []
    for m, class_boxes in zip(maps, boxes):
        for d in DELTAS:
            locs[d].append(metrics.loc(m, class_boxes, d))
        box_ious.append(metrics.iou(metrics.box_from_map(m, BOX_FRACTION), class_boxes).max().item())
    return {
        "pairs": len(targets),
        "avg_drop": metrics.average_drop(Y, O),
        "incr_conf": metrics.increase_in_confidence(Y, O),
        "drops": metrics.confidence_drop(Y, O),
        **{f"loc_{d:g}": sum(v) / len(v) for d, v in locs.items()},
        "pointing": 100 * metrics.pointing_game(maps, own).double().mean().item(),
        "box_iou": sum(box_ious) / len(box_ious),
        "miou": metrics.mask_iou(maps, own, MASK_DELTA).mean().item(),
        "off_target": metrics.off_target(maps, masks, targets).mean().item(),
    }


def evaluate(models, n=500, seed=1000, layers=None, batch_size=100, progress=True):
    """Rows of the table (dicts keyed by COLUMNS' csv names) and notes on what could not be run."""
    from .data import make_shapes
    from .models import load_pretrained

    methods, note = other_methods()
    notes = [note] if note else []
    data = make_shapes(n, seed)
    img, cls = data.labels.nonzero(as_tuple=True)  # every (image, present class) pair
    images, masks = data.images[img], data.masks[img]
    boxes = [data.boxes[i][data.box_classes[i] == c] for i, c in zip(img.tolist(), cls.tolist())]

    loaded, missing = {}, []
    for name in models:
        try:
            loaded[name] = load_pretrained(name)
        except FileNotFoundError as err:  # one missing checkpoint should not cost the other rows
            missing.append(f"{name} skipped: {err}")
    if not loaded:
        raise FileNotFoundError("no model could be loaded: " + "; ".join(missing))
    notes += missing
    plan = [(name, layer) for name in loaded for layer in (layers or LAYERS[name])]
    for name, layer in plan:  # a misspelt layer should stop the run before it starts, not become a note
        try:
            resolve_layer(loaded[name], layer)
        except ValueError as err:
            raise ValueError(f"in model {name!r}: {err}") from None
    rows, Y = [], {}
    bar = tqdm(total=len(plan) * (2 + len(methods)), desc="evaluate", disable=not progress, file=sys.stderr)
    for name, layer in plan:
        model = loaded[name]
        if name not in Y:  # the score on the whole image is the same for every method and layer
            Y[name] = in_batches(lambda x, t: {"Y": metrics.target_probs(model, x, t, "sigmoid")},
                                 batch_size, images, cls)["Y"]
        bar.set_postfix_str(f"{name} {layer}")
        raw = in_batches(lambda x, t: gradient_maps(model, x, t, layer), batch_size, images, cls)
        for method, f in methods.items():
            try:
                raw.update(in_batches(lambda x, t: f(model, x, t, layer), batch_size, images, cls))
            except (ValueError, NotImplementedError, TypeError) as err:
                # CAM is undefined away from the GAP layer (the table says so once); Relevance-CAM
                # may not support every model, which the notes say.
                if method != "CAM":
                    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
                    notes.append(f"{method} not run on {name} at {layer}: {first_line}")
                bar.update(1)
        scored = {}
        for method, maps in raw.items():
            scored[method] = score_row(model, images, cls, masks, boxes, maps, Y[name], batch_size)
            bar.update(1)
        reference = scored["Grad-CAM"]["drops"]
        for method, row in scored.items():
            win = metrics.win_percent(row.pop("drops"), reference)
            rows.append({"model": name, "layer": layer, "method": method, **row, "win_vs_gradcam": win})
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


def main(argv=None):
    from .models import PRETRAINED

    parser = argparse.ArgumentParser(prog="python -m minicam.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="held-out images (default 500)")
    parser.add_argument("--seed", type=int, default=1000, help="make_shapes seed (default 1000, held out)")
    parser.add_argument("--models", nargs="+", default=list(PRETRAINED), choices=list(PRETRAINED))
    parser.add_argument("--layers", nargs="+", help="layer names valid in every chosen model "
                        "(default: a shallow block and the last one of each)")
    parser.add_argument("--batch-size", type=int, default=100, help="pairs per model call")
    parser.add_argument("--out", type=Path, default=Path("results"), help="directory for metrics.md and metrics.csv")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.n < 1 or args.batch_size < 1:
        parser.error("--n and --batch-size must be positive")

    start = time.perf_counter()
    rows, notes = evaluate(args.models, args.n, args.seed, args.layers, args.batch_size, not args.quiet)
    seconds = time.perf_counter() - start
    pairs = rows[0]["pairs"] if rows else 0
    text = "\n".join([
        f"# minicam evaluation: {args.n} held-out shapes images (seed {args.seed}), {pairs} (image, class) pairs",
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.md").write_text(text)  # no timing in the file, so a rerun reproduces it exactly
    write_csv(rows, args.out / "metrics.csv")
    print(text)
    print(f"runtime {seconds:.0f} s on {torch.get_num_threads()} CPU threads; wrote {args.out / 'metrics.md'} "
          f"and {args.out / 'metrics.csv'}")
    return rows


if __name__ == "__main__":
    main()
