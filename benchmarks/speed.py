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


def median_seconds(fn, repeats):
    fn()  # warm-up: allocator and kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    base = median_seconds(forward, args.repeats)
    print(f"ResNet-18, batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print(f"{'forward pass (no_grad)':24s} {base * 1000:8.1f} ms   1.00x")
    for name, fn in methods.items():
        t = median_seconds(fn, args.repeats)
        print(f"{name:24s} {t * 1000:8.1f} ms   {t / base:.2f}x")


if __name__ == "__main__":
    main()
