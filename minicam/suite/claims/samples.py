"""The samples the claims are measured on, named once (every claim on one question uses one of these).

Held-out images come from seeds the models never saw (they were trained on seeds 0, 1, 2, ...; the notebooks'
held-out images start at seed 1000). A pair is (image, class present in it).
"""
from __future__ import annotations

from minicam.data import make_shapes

from . import register_sample


# The notebooks' helpers and this notebook's claims: reached through minicam.suite.claims (compute, cite,
# values, sample) or imported by name by the notebook that teaches them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

def every_pair(n: int):
    """make_shapes(n, seed=1000) and every (image, present class) pair of it: (batch, images, classes)."""
    held = make_shapes(n, seed=1000)
    images, classes = held.labels.nonzero(as_tuple=True)
    return held, images, classes


@register_sample("held-100", "make_shapes(100, seed=1000): the first 100 held-out images, every (image, "
                             "present class) pair")
def held_100():
    return every_pair(100)


@register_sample("held-200", "make_shapes(200, seed=1000): 200 held-out images, every (image, present class) pair")
def held_200():
    return every_pair(200)
