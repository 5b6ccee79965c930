"""Speed of each method as a ratio to one forward pass, measured in one run on this machine.

torchvision ResNet-18 (random weights), 224x224, batch 8. Target: Grad-CAM and Grad-CAM++ at
layer4 <= 1.3x a forward pass (one forward, then a backward to layer4 only).
Run: python benchmarks/speed.py [--repeats 5]
"""
import argparse
import statistics
import time

import torch
import torchvision

import minicam


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_ratio(fn, base, repeats):
    """Median over repeats of time(fn) / time(base), the two timed back to back each time, so that
    load from elsewhere on a shared machine hits both sides of a ratio alike."""
    fn(), base()  # warm-up: allocator and kernels
    pairs = [(seconds(fn), seconds(base)) for _ in range(repeats)]
    return statistics.median(t for t, _ in pairs), statistics.median(t / b for t, b in pairs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(args.batch, 3, args.size, args.size)
    target = 7

    def forward():
        with torch.no_grad():
            model(x)

    methods = {
        "gradcam layer4": lambda: minicam.gradcam(model, x, target, "layer4"),
        "gradcam_pp layer4": lambda: minicam.gradcam_pp(model, x, target, "layer4"),
        "cam layer4": lambda: minicam.cam(model, x, target, "layer4", "fc"),
        "gradcam layer2": lambda: minicam.gradcam(model, x, target, "layer2"),
        "saliency": lambda: minicam.saliency(model, x, target),
        "guided_backprop": lambda: minicam.guided_backprop(model, x, target),
        "guided_gradcam layer4": lambda: minicam.guided_gradcam(model, x, target, "layer4"),
    }
    print(f"ResNet-18, batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats} paired runs; ratio = method / forward pass (no_grad)")
    base, _ = paired_ratio(forward, forward, args.repeats)
    print(f"{'forward pass (no_grad)':24s} {base * 1000:8.1f} ms   1.00x")
    for name, fn in methods.items():
        t, ratio = paired_ratio(fn, forward, args.repeats)
        goal = "  (target <= 1.3x)" if name in ("gradcam layer4", "gradcam_pp layer4") else ""
        print(f"{name:24s} {t * 1000:8.1f} ms   {ratio:.2f}x{goal}")


if __name__ == "__main__":
    main()
