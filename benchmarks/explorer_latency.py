"""Latency of the explorer's redraws on the shapes VGG, medians in ms, measured in one run.

Each timed step sets one control's .value, as a user's click does; the callback computes the map
(or takes it from the cache), updates the figure and encodes the PNG. "uncached" clears the cache
first, so the step includes the model's forward and backward passes. Targets: a class or method
change <= 100 ms, a layer change <= 300 ms.
Run: python benchmarks/explorer_latency.py [--repeats 15]
"""
import argparse
import statistics
import time

import torch

from minicam.suite.widgets import Explorer


def shapes_vgg():
    """The trained shapes VGG and 16 held-out images; a random one of the same shape if not built yet."""
    from minicam.data import CLASSES, make_shapes
    from minicam.models import ShapesVGG, load_pretrained
    try:
        model, note = load_pretrained("shapes_vgg"), "shapes_vgg (trained)"
    except FileNotFoundError:
        torch.manual_seed(0)
        model, note = ShapesVGG().eval(), "ShapesVGG (random weights: shapes_vgg.pt not built yet)"
    return model, make_shapes(16, seed=1000).images, CLASSES, note


def median_ms(ex, control, values, repeats, uncached=False):
    """Median time of setting control.value to each of `values` in turn, `repeats` times in all."""
    times = []
    for i in range(repeats + 1):
        if uncached:
            ex.clear_cache()
        value = values[i % len(values)]
        if control.value == value:  # no change, no callback: step on
            value = values[(i + 1) % len(values)]
        start = time.perf_counter()
        control.value = value
        elapsed = time.perf_counter() - start
        if ex.error is not None:
            raise ex.error
        if i:  # the first step warms up
            times.append(elapsed * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    model, images, classes, note = shapes_vgg()
    ex = Explorer(model, images, class_names=classes)
    print(f"{note}, {len(images)} images {tuple(images.shape[1:])}, layers {ex.layers}, "
          f"torch threads while computing: {ex.threads}")
    ex.show(layer="relu6", method="Grad-CAM", index=0)
    classes_all = list(range(len(classes)))
    rows = []

    def step(name, control, values, target=None, uncached=False, setup=None):
        if setup:
            setup()
        rows.append((name, median_ms(ex, control, values, repeats, uncached), target))

    step("class change, uncached", ex.class_menu, classes_all, 100, uncached=True)
    step("class change, cached", ex.class_menu, classes_all, 100)
    step("method change Grad-CAM <-> Grad-CAM++ (one capture)", ex.method_menu, ["Grad-CAM", "Grad-CAM++"], 100)
    step("method change Grad-CAM <-> CAM, uncached", ex.method_menu, ["Grad-CAM", "CAM"], 100, uncached=True)
    step("method change -> Relevance-CAM, uncached", ex.method_menu, ["Relevance-CAM", "Grad-CAM"], 100,
         uncached=True)
    step("method change -> Guided Grad-CAM, uncached", ex.method_menu, ["Guided Grad-CAM", "Grad-CAM"], 100,
         uncached=True)
    step("layer change, uncached", ex.layer_slider, ["relu3", "relu6"], 300, uncached=True,
         setup=lambda: ex.show(method="Grad-CAM"))
    step("layer change, cached", ex.layer_slider, ["relu3", "relu6"], 300)
    step("image change, uncached", ex.image_slider, list(range(len(images))), None, uncached=True)
    step("image change, cached", ex.image_slider, [0, 1], None)
    for name, ms, target in rows:
        verdict = "" if target is None else ("  ok" if ms <= target else f"  SLOWER than {target} ms")
        print(f"{name:<52} {ms:7.1f} ms{verdict}")


if __name__ == "__main__":
    main()
