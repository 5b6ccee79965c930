"""Relevance-CAM against Grad-CAM at a shallow and at the last conv layer of a shipped shapes model.

Lee et al. (CVPR 2021) claim Relevance-CAM still localises at shallow layers, where Grad-CAM's
gradients are shattered. The figure of merit is the pointing game: the maximum of the map, upsampled
bilinearly to the image, must lie on the target class's pixels. Every (image, present class) pair is
one explanation (the shapes models are multi-label). A constant map points nowhere and counts as a miss.
Printed, not asserted: the numbers are what this machine measures.

Run: python benchmarks/relevance_layers.py [--model shapes_vgg] [--n 200] [--seed 1000]
"""
import argparse
import time

import torch

import minicam
from minicam.data import make_shapes
from minicam.lrp import relevance_cam
from minicam.metrics import pointing_game
from minicam.models import load_pretrained

LAYERS = {"shapes_vgg": ("relu2", "relu6"), "shapes_vgg_biased": ("relu2", "relu6"),
          "shapes_resnet": ("layer1", "layer4")}
METHODS = {
    "Grad-CAM": minicam.gradcam,
    "Relevance-CAM (survey start)": relevance_cam,
    "Relevance-CAM (authors' start)": lambda m, x, t, layer: relevance_cam(m, x, t, layer, start="authors"),
}


def pairs(batch):
    """(image index, class) for every class present in every image."""
    index, target = batch.labels.nonzero(as_tuple=True)
    return index, target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes_vgg", choices=sorted(LAYERS))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1000, help="held out: training used seeds 0, 1, 2, ...")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    model = load_pretrained(args.model)
    batch = make_shapes(args.n, seed=args.seed)
    index, target = pairs(batch)
    images, masks = batch.images[index], batch.masks[index, target]
    size = images.shape[-2:]
    print(f"{args.model}: {args.n} images (seed {args.seed}), {len(index)} (image, class) pairs")
    print(f"{'layer':8} {'method':32} {'pointing %':>10} {'constant maps':>14} {'seconds':>8}")
    for layer in LAYERS[args.model]:
        for name, method in METHODS.items():
            start = time.perf_counter()
            maps = torch.cat([method(model, images[i:i + args.batch], target[i:i + args.batch], layer)
                              for i in range(0, len(images), args.batch)])
            seconds = time.perf_counter() - start
            hits = pointing_game(minicam.upsample(maps, size), masks)
            flat = maps.flatten(1)
            constant = int((flat.max(1).values == flat.min(1).values).sum())
            print(f"{layer:8} {name:32} {100 * hits.float().mean().item():10.1f} {constant:14d} {seconds:8.1f}")


if __name__ == "__main__":
    main()
