"""`minicam evaluate`: every map method, on a few layers of each shipped shapes model, scored with
`minicam.metrics` on held-out images. Writes the table as Markdown and CSV (`--out`, default results/)
and prints the Markdown. (`python -m minicam evaluate ...` is the same command.)

Every (image, present class) pair is one explanation: the shapes models are multi-label, so each class
in an image is explained on its own (all of an image's classes from one forward pass, a (N, T) target),
and its probability is the sigmoid of its score. Images come from
`make_shapes(n, seed)` with the held-out seed 1000 (training used seeds 0, 1, 2, ...).

Columns (mean over pairs unless said otherwise):
  Average Drop %, % Increase in Confidence  Grad-CAM++'s faithfulness metrics, on E = L o I
  Win % vs Grad-CAM  against Grad-CAM at the same model and layer (ties count half; Grad-CAM scores 50)
  Loc(delta)         Grad-CAM++ eq. 26 against the target class's boxes
  Pointing %         the map's maximum on the target's mask (no tolerance)
  Box IoU            box_from_map(0.15), Grad-CAM's protocol, against the best-matching target box
  mIoU               map above 0.5 (after min-max) against the target's mask
  Off-target         share of the map's positive mass on objects of other classes

Both files are written under temporary names and renamed when complete, one run at a time per folder.
Exit status: 0 done, 2 a usage error, 130 interrupted (Ctrl-C; nothing written).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from minicam import metrics, models
from minicam.checks import NotApplicable, whole_number
from minicam.data import make_shapes
from minicam.hooks import capture, explainable_layers
from minicam.maps import upsample
from minicam.methods import METHODS

from ._common import INTERRUPTED, OutputFolder, UsageError, check_memory, write_atomic

__all__ = ["main", "evaluate", "check_options", "score_row", "held_out_pairs", "to_markdown", "write_csv", "report",
           "LAYERS", "EVALUATED", "COLUMNS", "BOX_FRACTION", "MASK_DELTA"]

PROG = "minicam evaluate"
# A shallow block and the last one of each model: CAM is defined only at the last (GAP -> fc), and the
# shallow one is where Relevance-CAM claims to beat Grad-CAM. Two layers keep the default run short.
LAYERS = {
    "shapes_vgg": ("relu2", "relu6"),
    "shapes_vgg_biased": ("relu2", "relu6"),
    "shapes_resnet": ("layer2", "layer4"),
}
EVALUATED = ("Grad-CAM", "Grad-CAM++", "CAM", "Relevance-CAM")  # names in minicam.methods.METHODS, in row order
SAID_ONCE = ("CAM",)  # left out without a note where it does not apply: the report says once where it does
DELTAS = (0.0, 0.25, 0.5)
BOX_FRACTION = 0.15   # Grad-CAM's threshold (CAM used 0.20)
MASK_DELTA = 0.5
IMAGE_SIZE = 64  # make_shapes' default size: the held-out images, and the probe for a model's layers
PAIR_BYTES = 300_000  # memory per held-out image: it and its masks, once per present class, and their maps

COLUMNS = [  # (csv name, Markdown header, format)
    ("model", "model", "{}"), ("layer", "layer", "{}"), ("method", "method", "{}"), ("pairs", "pairs", "{}"),
    ("avg_drop", "Avg Drop % ↓", "{:.2f}"), ("incr_conf", "Incr. Conf. % ↑", "{:.2f}"),
    ("win_vs_gradcam", "Win % vs Grad-CAM ↑", "{:.2f}"),
    ("loc_0", "Loc(0) ↑", "{:.3f}"), ("loc_0.25", "Loc(0.25) ↑", "{:.3f}"), ("loc_0.5", "Loc(0.5) ↑", "{:.3f}"),
    ("pointing", "Pointing % ↑", "{:.1f}"), ("box_iou", "Box IoU ↑", "{:.3f}"),
    ("miou", "mIoU ↑", "{:.3f}"), ("off_target", "Off-target ↓", "{:.3f}"),
]
ARGUMENTS = {"models": "models", "n": "n", "seed": "seed", "layers": "layers", "batch_size": "batch_size"}
OPTIONS = {"models": "--models", "n": "--n", "seed": "--seed", "layers": "--layers", "batch_size": "--batch-size"}


# ---- the options, checked before any work --------------------------------------------------------

def check_options(names, n=500, seed=1000, layers=None, batch_size=100, called=ARGUMENTS) -> tuple:
    """evaluate's options as (model names, n, seed, layer names or None, batch_size), or an error that
    names the option (as `called` calls it: the arguments, or the command line's OPTIONS) and says what
    would be right. One string counts as a list of one name."""
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, (list, tuple)) or not names or not all(v in models.PRETRAINED for v in names):
        raise ValueError(f"{called['models']} must be one or more of {list(models.PRETRAINED)}, got {names!r}")
    n = whole_number(n, called["n"], 1, floats=False, want="a positive integer (held-out images)")
    check_memory(n * PAIR_BYTES, called["n"], n, PAIR_BYTES, "images")
    seed = whole_number(seed, called["seed"], 0, floats=False, want="a non-negative integer (make_shapes' seed; "
                        "1000 is held out from training)")
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else layers
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(v, str) for v in layers):
            raise TypeError(f"{called['layers']} must be None (each model's default) or one or more layer names, "
                            f"got {layers!r}")
        layers = list(layers)
    batch_size = whole_number(batch_size, called["batch_size"], 1, floats=False,
                              want="a positive integer (pairs per model call)")
    return list(names), n, seed, layers, batch_size


def candidate_layers(model) -> list[str]:
    """The layers of `model` the table can use (minicam.hooks.explainable_layers on one IMAGE_SIZE image)."""
    return explainable_layers(model, torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))


def check_layers(model, name: str, layers, option: str = "layers") -> None:
    """Every layer of `layers` is one of the model's candidate layers, or a ValueError listing them."""
    usable = candidate_layers(model)
    modules = dict(model.named_modules())
    for layer in layers:
        if layer not in usable:
            why = "cannot be used: it does not output (N, K, h, w) maps exactly once per forward pass" \
                if layer in modules else "not found"
            raise ValueError(f"{option}: in model {name!r}: layer {layer!r} {why}; layers must be among its "
                             f"candidate layers: {', '.join(usable)}")


# ---- the maps and their scores ----------------------------------------------------------------------

def method_maps(model, x, targets, layer, methods=EVALUATED) -> dict:
    """{method: raw maps (N, h, w)} at `layer` for images x and targets (N,) ((N, T, h, w) for targets
    (N, T), T classes per image): the CAM family from one capture (`Method.from_capture`), the others by
    their own call. A method that does not apply here maps to its NotApplicable instead."""
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


def pair_maps(model, pairs: dict, layer, batch_size: int, methods=EVALUATED) -> dict:
    """`method_maps` of every (image, class) pair of `pairs` (held_out_pairs), (P, h, w) in pair order, with
    each image's classes from one forward pass: the images with T classes present, batch_size // T at a
    time, with their (N, T) targets. A method that does not apply maps to its first NotApplicable."""
    image, classes = pairs["image"], pairs["classes"]
    per_pair = torch.bincount(image)[image]  # how many classes each pair's image holds
    maps: dict = {}
    for t in per_pair.unique().tolist():
        rows = (per_pair == t).nonzero().flatten()  # pair order: an image's t pairs are together
        per_call = max(1, batch_size // t)
        part = in_batches(lambda xs, ts: method_maps(model, xs, ts, layer, methods), per_call,
                          pairs["images"][rows[::t]], classes[rows].view(-1, t))
        for name, m in part.items():
            if isinstance(maps.get(name), Exception):
                continue  # the first NotApplicable stays
            if isinstance(m, Exception):
                maps[name] = m
            else:
                maps.setdefault(name, m.new_zeros(len(classes), *m.shape[2:]))[rows] = m.flatten(0, 1)
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
    batch_size = whole_number(batch_size, "batch_size", 1, floats=False, want="a positive integer (pairs per model call)")
    for name, value in (("targets", targets), ("masks", masks), ("boxes", boxes), ("raw", raw), ("Y", Y)):
        if not hasattr(value, "__len__") or len(value) != len(images):
            raise ValueError(f"{name} must hold one entry per pair ({len(images)}), got "
                             f"{len(value) if hasattr(value, '__len__') else type(value).__name__}")
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
    """Every (image, present class) pair of make_shapes(n, seed), image by image: images, classes, masks,
    the boxes of each pair's class, and the index of each pair's image."""
    data = make_shapes(n, seed)
    img, cls = data.labels.nonzero(as_tuple=True)
    boxes = [data.boxes[i][data.box_classes[i] == c] for i, c in zip(img.tolist(), cls.tolist())]
    return {"images": data.images[img], "classes": cls, "masks": data.masks[img], "boxes": boxes, "image": img}


def load_models(names, layers=None, option: str = "layers") -> tuple[dict, list[str]]:
    """The shipped models that load, and notes on those that do not. A misspelt layer, or one the table
    cannot use, stops the run before it starts (listing the model's candidate layers) instead of
    becoming a note."""
    loaded, missing = {}, []
    for name in names:
        try:
            loaded[name] = models.load_pretrained(name)
        except FileNotFoundError as err:  # one missing checkpoint should not cost the other rows
            missing.append(f"{name} skipped: {err}")
    if not loaded:
        raise FileNotFoundError("no model could be loaded: " + "; ".join(missing))
    for name, model in loaded.items():
        check_layers(model, name, layers or LAYERS[name], option)
    return loaded, missing


def rows_at(model, name: str, layer: str, pairs: dict, Y, batch_size: int, notes: list) -> list[dict]:
    """The table's rows of one model at one layer; a method that does not apply is left out (CAM away
    from GAP -> fc silently, as the table says once; any other with a note)."""
    x, cls = pairs["images"], pairs["classes"]
    raw = pair_maps(model, pairs, layer, batch_size)
    scored = {}
    for method, maps in raw.items():
        if isinstance(maps, NotApplicable):
            if method not in SAID_ONCE:
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
    """Rows of the table (dicts keyed by COLUMNS' csv names) and notes on what could not be run.
    Every option is checked (and the models loaded, their layers checked) before any image is made."""
    names, n, seed, layers, batch_size = check_options(models, n, seed, layers, batch_size)
    loaded, notes = load_models(names, layers)
    pairs = held_out_pairs(n, seed)
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


def _check_rows(rows) -> None:
    """rows: a list of dicts with every key of COLUMNS, or an error naming rows."""
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, dict) for row in rows):
        raise TypeError(f"rows must be a list of dicts (evaluate's rows), got {type(rows).__name__}")
    for i, row in enumerate(rows):
        lacking = [key for key, _, _ in COLUMNS if key not in row]
        if lacking:
            raise ValueError(f"rows[{i}] lacks the columns {lacking}; each row must have every key of COLUMNS")


def to_markdown(rows) -> str:
    _check_rows(rows)
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def write_csv(rows, path: Path) -> None:
    """The rows as CSV at path, written under a temporary name and renamed when complete."""
    _check_rows(rows)
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"path: the directory of {path} does not exist; create it or choose another path")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=[key for key, _, _ in COLUMNS])
    writer.writeheader()
    writer.writerows({key: row[key] for key, _, _ in COLUMNS} for row in rows)
    write_atomic(Path(path), lambda f: f.write(text.getvalue().encode("utf-8")))


def report(rows, notes, n: int, seed: int) -> str:
    """The Markdown report: a title, the table, how to read it, and the notes."""
    _check_rows(rows)
    if not isinstance(notes, (list, tuple)) or not all(isinstance(note, str) for note in notes):
        raise TypeError(f"notes must be a list of strings (one per note), got {notes!r}")
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


def _parser(prog: str):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--n", type=int, default=500, help="held-out images (default 500)")
    parser.add_argument("--seed", type=int, default=1000, help="make_shapes seed (default 1000, held out)")
    parser.add_argument("--models", nargs="+", default=list(models.PRETRAINED),
                        choices=list(models.PRETRAINED))
    parser.add_argument("--layers", nargs="+", help="layer names valid in every chosen model "
                        "(default: a shallow block and the last one of each)")
    parser.add_argument("--batch-size", type=int, default=100, help="pairs per model call")
    parser.add_argument("--out", default="results", help="directory for metrics.md and metrics.csv")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None, prog: str = PROG) -> int:
    """The command line. Every option is checked, the models loaded and --out probed before any work; a
    bad one is one message and exit status 2. Writes metrics.md and metrics.csv; 130 on Ctrl-C."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        folder = OutputFolder(args.out)
        check_options(args.models, args.n, args.seed, args.layers, args.batch_size, called=OPTIONS)
        load_models(args.models, args.layers, option="--layers")
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))
    try:
        start = time.perf_counter()
        rows, notes = evaluate(args.models, args.n, args.seed, args.layers, args.batch_size, not args.quiet)
        seconds = time.perf_counter() - start
        text = report(rows, notes, args.n, args.seed)
        out = folder.open()
        try:
            write_atomic(out / "metrics.md", lambda f: f.write(text.encode("utf-8")))  # no timing: a rerun reproduces it
            write_csv(rows, out / "metrics.csv")
        finally:
            folder.close()
    except UsageError as err:
        parser.error(str(err))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        return INTERRUPTED
    print(text)
    print(f"runtime {seconds:.0f} s on {torch.get_num_threads()} CPU threads; wrote {out / 'metrics.md'} "
          f"and {out / 'metrics.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
