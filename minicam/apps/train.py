"""`minicam train`: the shipped shapes models trained from scratch (a few minutes each on 2 CPU cores).

    minicam train NAME [--out PATH] [--seed S] [--epochs E]
    minicam train --all

(`python -m minicam train ...` is the same command.) NAME is one of minicam.models.SHIPPED: the models
the notebooks explain (PRETRAINED) and the control for the data-randomisation test (CONTROLS:
shapes_vgg_shuffled, trained as shapes_vgg but on labels permuted across the images). The weights go
to minicam/weights/NAME.pt unless --out says otherwise; they are written under a temporary name and
renamed when complete, so the old file stays whole until the new one is (a full disk costs neither: if
the file cannot be written, the trained weights are saved in the temporary folder and the message says
where).

Seeds: epoch e trains on fresh images make_shapes(n, seed=e), so training uses
data seeds 0 .. epochs-1; the report at the end uses held-out seed 1000 (the
tests use seeds >= 1000 too). --seed seeds torch (initial weights and batch
order), so a run is reproducible and the shipped files are what it produces.
The shuffled model's label permutation of epoch e is seeded by e alone (its own
generator), so its weights and batch order are drawn exactly as shapes_vgg's.

Exit status: 0 done, 1 the weights could not be written to --out (saved elsewhere, as said), 2 a usage
error, 130 interrupted (Ctrl-C; nothing written).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from minicam.checks import check_images, check_model, preserved, whole_number
from minicam.data import CLASSES, CUE_CLASS, make_shapes
from minicam.models import SHIPPED, ShapesVGG, fold_batchnorm, shapes_resnet, weights_path

from ._common import INTERRUPTED, check_memory, write_atomic

__all__ = ["main", "train", "report", "check_options", "predict", "accuracy", "majority_rate", "CONFIGS",
           "EVAL_SEED"]

PROG = "minicam train"
IMAGE_BYTES = 200_000  # memory per training image of an epoch: it, its masks and labels, and their making

EVAL_SEED = 1000
CONFIGS = {  # images per epoch, epochs, peak learning rate, bias of the training data, labels permuted?
    "shapes_vgg": dict(n=8000, epochs=6, lr=3e-3, bias=None, shuffle=False),
    "shapes_resnet": dict(n=5000, epochs=5, lr=3e-3, bias=None, shuffle=False),
    "shapes_vgg_biased": dict(n=8000, epochs=6, lr=3e-3, bias="train", shuffle=False),
    "shapes_vgg_shuffled": dict(n=8000, epochs=6, lr=3e-3, bias=None, shuffle=True),
}


@torch.no_grad()
def predict(model, images, batch_size=250):
    """Logits (N, K) of model on images (N, 3, H, W), in eval mode; the model's mode (and every
    parameter's requires_grad and .grad) is as it was afterwards."""
    model, images = check_model(model), check_images(images, "images")
    batch_size = whole_number(batch_size, "batch_size", 1, floats=False)
    with preserved(model):
        if len(images) == 0:
            return model(images)
        return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def accuracy(model, images, labels):
    """(per-label accuracy, exact-match accuracy, per-class accuracy (K,)) in [0, 1].

    A label is predicted present when its logit is > 0 (sigmoid > 0.5).
    """
    check_images(images, "images")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2 or len(labels) != len(images):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a (N, K) tensor with one row per image (N = {len(images)}), got {got}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be multi-hot, 0 or 1 for each class, got other values")
    logits = predict(model, images)
    if logits.shape != labels.shape:
        raise ValueError(f"labels has shape {tuple(labels.shape)} but the model gives {tuple(logits.shape)} logits; "
                         "give one column per class")
    right = (logits > 0) == labels.bool()
    return right.float().mean().item(), right.all(1).float().mean().item(), right.float().mean(0)


def majority_rate(labels):
    """Per class, the share of images whose label is the class's more common value (K,): the per-label
    accuracy of a model that always answers the majority, which is chance for a model that learned nothing
    about the images. labels: (N, K) multi-hot."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2 or len(labels) == 0:
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a non-empty (N, K) multi-hot tensor, one row per image, got {got}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be multi-hot, 0 or 1 for each class, got other values")
    present = labels.double().mean(0)
    return torch.maximum(present, 1 - present)


def _probe_out(out) -> Path:
    """out as the path of a regular file we can write (made or replaced), or an OSError naming out --
    found before any training."""
    if not isinstance(out, (str, os.PathLike)) or str(out) == "":
        raise TypeError(f"out must be a file path (str or Path), got {out!r}")
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(f"out must be a file path, but {path} is a directory; give e.g. {path / 'model.pt'}")
    if path.exists() and not path.is_file():
        raise OSError(f"out must be a regular file, but {path} is a device or other special file; give a path "
                      "like weights/model.pt")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"out: cannot write {path}: the directory {path.parent} does not exist; "
                                "create it or choose another path")
    try:
        with tempfile.TemporaryFile(dir=path.parent):  # can we create a file there (the new weights' first name)?
            pass
    except OSError as err:
        raise PermissionError(f"out: cannot write {path} ({err.strerror}); choose a writable path") from None
    return path


def check_options(name, seed=0, epochs=None, out=None, images=None):
    """train's options checked before any work: returns (config, seed, epochs, images per epoch, out path).

    A bad value raises an error that names it; the output path is probed by creating a file beside it.
    """
    if not isinstance(name, str) or name not in CONFIGS:
        raise ValueError(f"name must be one of {SHIPPED}, got {name!r}")
    cfg = CONFIGS[name]
    seed = whole_number(seed, "seed", -2 ** 63, floats=False, want="an integer (torch.manual_seed's seed)")
    if seed >= 2 ** 64:
        raise ValueError(f"seed must be an integer below 2**64 (torch.manual_seed's range), got {seed}")
    epochs = cfg["epochs"] if epochs is None else whole_number(
        epochs, "epochs", 1, floats=False, want=f"an integer in 1..{EVAL_SEED - 1}")
    if not 1 <= epochs < EVAL_SEED:
        raise ValueError(f"epochs must be in 1..{EVAL_SEED - 1} so training seeds stay below the held-out ones, got {epochs}")
    n = cfg["n"] if images is None else whole_number(images, "images", 1, floats=False,
                                                want="a positive integer (images per epoch)")
    check_memory(n * IMAGE_BYTES, "images", n, IMAGE_BYTES, "images per epoch")
    return cfg, seed, epochs, n, _probe_out(weights_path(name) if out is None else out)


def train(name, seed=0, epochs=None, out=None, images=None):
    """Train model ``name`` from scratch, save its state_dict, return (model, last-epoch mean loss).

    epochs and images (per epoch) default to CONFIGS[name]. Every option, the output path included,
    is checked before training starts (see check_options).
    """
    cfg, seed, epochs, n, out = check_options(name, seed, epochs, out, images)
    torch.manual_seed(seed)
    # the VGGs train with batch norm (a plain 6-layer net learns far slower) and
    # have it folded into their convs afterwards
    model = shapes_resnet() if name == "shapes_resnet" else ShapesVGG(batchnorm=True)
    start = time.time()
    losses = _fit(model, name, cfg, epochs, n)
    model.eval()
    if isinstance(model, ShapesVGG):
        model = fold_batchnorm(model)
    final_loss = sum(losses) / len(losses)

    save(model.state_dict(), out)
    print(f"{name}: {time.time() - start:.0f} s, last-epoch training loss {final_loss:.4f}, saved {out}")
    return model, final_loss


class NotSaved(OSError):
    """The trained weights could not be written where asked; `kept` is where they were saved instead
    (None if nowhere could take them)."""

    def __init__(self, message: str, kept):
        super().__init__(message)
        self.kept = kept


def save(state: dict, out: Path) -> None:
    """state written to out atomically (the old file stays whole until the new one is complete). If that
    fails (a full disk), the state goes to a file in the temporary folder and NotSaved says where."""
    try:
        write_atomic(out, lambda f: torch.save(state, f), durable=True)
        return
    except OSError as err:
        reason = err.strerror or str(err)
    try:
        fd, kept = tempfile.mkstemp(prefix=f"{Path(out).stem}-", suffix=".pt")
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
    except OSError:
        raise NotSaved(f"cannot write {out} ({reason}), nor a copy in {tempfile.gettempdir()}: the trained weights "
                       f"are lost; {out} is as it was. Free some space and train again", None) from None
    raise NotSaved(f"cannot write {out} ({reason}); {out} is as it was, and the trained weights are saved in {kept}: "
                   f"move that file to {out} when there is room", kept)


def _fit(model, name, cfg, epochs, n):
    """Adam with a one-cycle schedule, fresh images make_shapes(n, seed=epoch) every epoch, batches of 64.
    Returns the last epoch's batch losses."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    batch_size = 64
    steps = epochs * -(-n // batch_size)
    # one-cycle (short warm-up, then anneal to ~0): more accuracy per step than a fixed rate
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps, pct_start=0.15)
    loss_fn = nn.BCEWithLogitsLoss()
    bar = tqdm(total=steps, desc=name, unit="batch")
    for epoch in range(epochs):
        data = make_shapes(n, seed=epoch, bias=cfg["bias"])  # fresh images every epoch
        labels = data.labels
        if cfg["shuffle"]:  # the data-randomisation control: each image gets another image's labels
            labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))]
        order = torch.randperm(len(data))
        model.train()
        losses = []
        for i in range(0, len(data), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(model(data.images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
    bar.close()
    return losses


def report(name, model, n=1000):
    """Print held-out accuracies (seed EVAL_SEED) beside the majority-label rate (what a model that
    learned nothing about the images scores); for the biased model also on cue-flipped images."""
    if not isinstance(name, str) or name not in CONFIGS:
        raise ValueError(f"name must be one of {SHIPPED}, got {name!r}")
    check_model(model)
    n = whole_number(n, "n", 1, floats=False, want="a positive integer (held-out images)")
    bias = CONFIGS[name]["bias"]
    held = make_shapes(n, seed=EVAL_SEED, bias=bias)
    per_label, exact, per_class = accuracy(model, held.images, held.labels)
    classes = ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, per_class.tolist()))
    print(f"  held-out (seed {EVAL_SEED}, bias={bias}): per-label {per_label:.1%}, exact-match {exact:.1%} ({classes})")
    majority = majority_rate(held.labels)
    chance = ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, majority.tolist()))
    print(f"  majority-label rate (chance): per-label {majority.mean().item():.1%} ({chance})")
    if bias is not None:
        flip = make_shapes(n, seed=EVAL_SEED, bias="flip")
        _, _, flip_class = accuracy(model, flip.images, flip.labels)
        k = CLASSES.index(CUE_CLASS)
        print(f"  cue class {CUE_CLASS!r}: accuracy {per_class[k]:.1%} when the cue agrees, "
              f"{flip_class[k]:.1%} when it is flipped")


def _parser(prog: str):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0].strip("`").replace("`", ""))
    p.add_argument("name", nargs="?", choices=SHIPPED, help="model to train")
    p.add_argument("--all", action="store_true", help="train all shipped models (the control included)")
    p.add_argument("--out", help="where to write the state_dict (default minicam/weights/NAME.pt)")
    p.add_argument("--seed", type=int, default=0, help="torch seed (weights init, batch order)")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--images", type=int, help="override the number of images per epoch")
    p.add_argument("--report", type=int, default=1000, help="held-out images for the final report")
    return p


def main(argv=None, prog: str = PROG) -> int:
    """The command line: every option is checked, and the output path probed, before any training;
    a bad one is one message and exit status 2, not a traceback. 1 if the weights could not be
    written to --out (saved elsewhere, as the message says), 130 on Ctrl-C."""
    p = _parser(prog)
    args = p.parse_args(argv)
    if args.all == (args.name is not None):
        p.error("give either one NAME or --all")
    if args.all and args.out:
        p.error("--out needs a single NAME")
    names = SHIPPED if args.all else [args.name]
    try:
        for name in names:
            check_options(name, seed=args.seed, epochs=args.epochs, out=args.out, images=args.images)
        whole_number(args.report, "report", 1, want="a positive number of held-out images")
        check_memory(args.report * IMAGE_BYTES, "report", args.report, IMAGE_BYTES, "held-out images")
    except (ValueError, TypeError, OSError) as err:
        p.error(f"--{err}")  # each message starts with the argument's name
    try:
        for name in names:
            model, _ = train(name, seed=args.seed, epochs=args.epochs, out=args.out, images=args.images)
            report(name, model, n=args.report)
    except NotSaved as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the weights being trained were not written (files already written stay)",
              file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
