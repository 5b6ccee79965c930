"""The top classes' maps from one pass: top-5 Grad-CAM as one call with a (N, 5) target against five
separate `minicam.gradcam` calls, measured side by side in one run.

torchvision ResNet-18 (random weights, seeded), 224x224, batch 8. Target: at layer4 the one call
costs <= 0.35x the five calls (one forward pass and five backward passes to layer4, instead of five
of each). Printed for layer2 too, where each backward pass goes further back.
Run: python benchmarks/topk.py [--repeats 7]
"""
import argparse
import statistics

import torch
import torchvision

import minicam
from speed import seconds  # benchmarks/speed.py, beside this file

TOP, BATCH, SIZE = 5, 8, 224


def interleaved(one, separate, repeats):
    """Medians of time(one), time(separate) and their ratio, the two timed back to back in turn (which
    goes first alternates), so that load from elsewhere on a shared machine hits both sides alike."""
    one(), separate()  # warm-up: allocator and kernels
    pairs = []
    for r in range(repeats):
        if r % 2:
            b, a = seconds(separate), seconds(one)
        else:
            a, b = seconds(one), seconds(separate)
        pairs.append((a, b))
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(a / b for a, b in pairs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved runs of each side (default 7)")
    repeats = parser.parse_args().repeats
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        top = model(x).topk(TOP, dim=1).indices  # (N, 5): each image's five best classes
    torch.testing.assert_close(minicam.gradcam(model, x, top, "layer4"),   # the same maps, as a check
                               torch.stack([minicam.gradcam(model, x, top[:, k], "layer4") for k in range(TOP)], 1))
    print(f"ResNet-18, batch {BATCH}, {SIZE}x{SIZE}, {torch.get_num_threads()} threads; top-{TOP} Grad-CAM; medians "
          f"of {repeats} interleaved runs")
    for layer, goal in (("layer4", "  (target <= 0.35x)"), ("layer2", "")):
        one, separate, ratio = interleaved(lambda: minicam.gradcam(model, x, top, layer),
                                           lambda: [minicam.gradcam(model, x, top[:, k], layer) for k in range(TOP)],
                                           repeats)
        print(f"{layer}: one call with a (N, {TOP}) target {one * 1000:7.1f} ms, {TOP} separate calls "
              f"{separate * 1000:7.1f} ms, ratio {ratio:.2f}x{goal}")


if __name__ == "__main__":
    main()
