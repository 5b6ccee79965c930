"""Train the shipped shapes models from scratch (a few minutes each on 2 CPU cores).

    python -m minicam.train NAME [--out PATH] [--seed S] [--epochs E]
    python -m minicam.train --all

NAME is one of minicam.models.PRETRAINED. The weights go to
minicam/weights/NAME.pt unless --out says otherwise.

Seeds: epoch e trains on fresh images make_shapes(n, seed=e), so training uses
data seeds 0 .. epochs-1; the report at the end uses held-out seed 1000 (the
tests use seeds >= 1000 too). --seed seeds torch (initial weights and batch
order), so a run is reproducible and the shipped files are what it produces.
"""
import argparse
import time

import torch
from torch import nn
from tqdm import tqdm

from .data import CLASSES, CUE_CLASS, make_shapes
from .models import PRETRAINED, ShapesVGG, fold_batchnorm, shapes_resnet, weights_path

EVAL_SEED = 1000
CONFIGS = {  # images per epoch, epochs, peak learning rate, bias of the training data
    "shapes_vgg": dict(n=8000, epochs=6, lr=3e-3, bias=None),
    "shapes_resnet": dict(n=5000, epochs=5, lr=3e-3, bias=None),
    "shapes_vgg_biased": dict(n=8000, epochs=6, lr=3e-3, bias="train"),
}


@torch.no_grad()
def predict(model, images, batch_size=250):
    """Logits (N, K) of model on images (N, 3, H, W), in eval mode."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def accuracy(model, images, labels):
    """(per-label accuracy, exact-match accuracy, per-class accuracy (K,)) in [0, 1].

    A label is predicted present when its logit is > 0 (sigmoid > 0.5).
    """
    right = (predict(model, images) > 0) == labels.bool()
    return right.float().mean().item(), right.all(1).float().mean().item(), right.float().mean(0)


def train(name, seed=0, epochs=None, out=None, images=None):
    """Train model ``name`` from scratch, save its state_dict, return (model, last-epoch mean loss).

    epochs and images (per epoch) default to CONFIGS[name].
    """
    cfg = CONFIGS[name]
    epochs = cfg["epochs"] if epochs is None else epochs
    n = cfg["n"] if images is None else images
    if not 1 <= epochs < EVAL_SEED:
        raise ValueError(f"epochs must be in 1..{EVAL_SEED - 1} so training seeds stay below the held-out ones, got {epochs}")
    torch.manual_seed(seed)
    # the VGGs train with batch norm (a plain 6-layer net learns far slower) and
    # have it folded into their convs afterwards
    model = shapes_resnet() if name == "shapes_resnet" else ShapesVGG(batchnorm=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    batch_size = 64
    steps = epochs * -(-n // batch_size)
    # one-cycle (short warm-up, then anneal to ~0): more accuracy per step than a fixed rate
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps, pct_start=0.15)
    loss_fn = nn.BCEWithLogitsLoss()

    start = time.time()
    bar = tqdm(total=steps, desc=name, unit="batch")
    for epoch in range(epochs):
        data = make_shapes(n, seed=epoch, bias=cfg["bias"])  # fresh images every epoch
        order = torch.randperm(len(data))
        model.train()
        losses = []
        for i in range(0, len(data), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(model(data.images[idx]), data.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
    bar.close()
    model.eval()
    if isinstance(model, ShapesVGG):
        model = fold_batchnorm(model)
    final_loss = sum(losses) / len(losses)

    out = weights_path(name) if out is None else out
    torch.save(model.state_dict(), out)
    print(f"{name}: {time.time() - start:.0f} s, last-epoch training loss {final_loss:.4f}, saved {out}")
    return model, final_loss


def report(name, model, n=1000):
    """Print held-out accuracies (seed EVAL_SEED); for the biased model also on cue-flipped images."""
    bias = CONFIGS[name]["bias"]
    held = make_shapes(n, seed=EVAL_SEED, bias=bias)
    per_label, exact, per_class = accuracy(model, held.images, held.labels)
    classes = ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, per_class.tolist()))
    print(f"  held-out (seed {EVAL_SEED}, bias={bias}): per-label {per_label:.1%}, exact-match {exact:.1%} ({classes})")
    if bias is not None:
        flip = make_shapes(n, seed=EVAL_SEED, bias="flip")
        _, _, flip_class = accuracy(model, flip.images, flip.labels)
        k = CLASSES.index(CUE_CLASS)
        print(f"  cue class {CUE_CLASS!r}: accuracy {per_class[k]:.1%} when the cue agrees, "
              f"{flip_class[k]:.1%} when it is flipped")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicam.train", description=__doc__.split("\n")[0])
    p.add_argument("name", nargs="?", choices=PRETRAINED, help="model to train")
    p.add_argument("--all", action="store_true", help="train all shipped models")
    p.add_argument("--out", help="where to write the state_dict (default minicam/weights/NAME.pt)")
    p.add_argument("--seed", type=int, default=0, help="torch seed (weights init, batch order)")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--images", type=int, help="override the number of images per epoch")
    p.add_argument("--report", type=int, default=1000, help="held-out images for the final report")
    args = p.parse_args(argv)
    if args.all == (args.name is not None):
        p.error("give either one NAME or --all")
    if args.all and args.out:
        p.error("--out needs a single NAME")
    for name in PRETRAINED if args.all else [args.name]:
        model, _ = train(name, seed=args.seed, epochs=args.epochs, out=args.out, images=args.images)
        report(name, model, n=args.report)


if __name__ == "__main__":
    main()
