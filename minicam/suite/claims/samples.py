"""The samples the claims are measured on, named once (every claim on one question uses one of these).

Held-out images come from seeds the models never saw (they were trained on seeds 0, 1, 2, ...; the notebooks'
held-out images start at seed 1000). A pair is (image, class present in it).
"""
from __future__ import annotations

from minicam.data import make_shapes

from . import register_sample


@register_sample("held-100", "make_shapes(100, seed=1000): the first 100 held-out images, every (image, "
                             "present class) pair")
def held_100():
    held = make_shapes(100, seed=1000)
    images, classes = held.labels.nonzero(as_tuple=True)
    return held, images, classes


@register_sample("held-200", "make_shapes(200, seed=1000): 200 held-out images, every (image, present class) pair")
def held_200():
    held = make_shapes(200, seed=1000)
    images, classes = held.labels.nonzero(as_tuple=True)
    return held, images, classes
