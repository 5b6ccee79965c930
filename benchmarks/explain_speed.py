"""Speed of `minicam explain` as a ratio to its floor, measured in one run on this machine.

A folder of 32 JPEG photos of about 480x360 (crops of matplotlib's sample photograph, seeded), a
torchvision ResNet-18 with seeded random weights saved as a state_dict, the default options (Grad-CAM,
top 3, batches of 8). The floor is a process that only decodes, resizes and classifies the same files:
the model built and its state_dict loaded, explain's own load_image and preprocessing, then one no-grad
forward pass and the top 3 per batch of 8.
Goal: explain <= 1.5x its floor. The two are timed back to back, `--repeats` times; the median ratio
is printed, so that load from elsewhere on a shared machine hits both sides of a ratio alike.

Run: python benchmarks/explain_speed.py [--repeats 3] [--photos 32]
"""
import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib.cbook
import numpy as np
import PIL.Image
import torch
import torchvision

from minicam.apps import explain

PHOTO = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # 512 x 600
BATCH = 8


def make_photos(folder: Path, count: int) -> list[Path]:
    """count JPEGs of 480x360: seeded crops of the sample photograph, some mirrored, re-encoded."""
    rng = np.random.default_rng(0)
    source = PIL.Image.open(PHOTO).convert("RGB").resize((640, 750))
    paths = []
    for i in range(count):
        left, top = int(rng.integers(0, 640 - 480)), int(rng.integers(0, 750 - 360))
        crop = source.crop((left, top, left + 480, top + 360))
        if i % 2:
            crop = crop.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT)
        paths.append(folder / f"photo_{i:02d}.jpg")
        crop.save(paths[-1], quality=90)
    return paths


def floor(weights: Path, paths) -> None:
    """Load the model, decode, resize and classify: what any tool that shows a photo's top classes must do."""
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    preprocess = explain.Preprocess(224)
    with torch.no_grad():
        for start in range(0, len(paths), BATCH):
            x = torch.stack([preprocess(explain.load_image(p)) for p in paths[start:start + BATCH]])
            model(x).topk(3, dim=1)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    with tempfile.TemporaryDirectory(prefix="minicam-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        paths = make_photos(tmp / "photos", args.photos)
        weights = tmp / "resnet18.pt"
        torch.save(model.state_dict(), weights)
        argv = ["--model", "resnet18", "--weights", str(weights), "--images", str(tmp / "photos"),
                "--out", str(tmp / "out"), "--quiet", "--device", "cpu"]

        def run_explain():
            with contextlib.redirect_stderr(io.StringIO()):
                code = explain.main(argv)
            if code != 0:
                raise SystemExit(f"explain exited with {code}")

        floor(weights, paths[:BATCH]), run_explain()  # warm-up: imports, allocator, kernels
        pairs = [(seconds(run_explain), seconds(lambda: floor(weights, paths))) for _ in range(args.repeats)]
    ratio = statistics.median(e / f for e, f in pairs)
    print(f"{args.photos} JPEG photos 480x360, ResNet-18, Grad-CAM top 3, batches of {BATCH}, "
          f"{torch.get_num_threads()} threads:")
    print(f"  explain {statistics.median(e for e, _ in pairs):.2f} s, floor (decode, resize, classify) "
          f"{statistics.median(f for _, f in pairs):.2f} s: ratio {ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
