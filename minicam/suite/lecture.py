"""The explorer for a lecture hall: every shipped model, its held-out images, every method, large controls.

    from minicam.suite.lecture import lecture_hall
    lecture_hall()          # the last expression of a cell; `make explorer` serves lecture/explorer.ipynb with Voila

It is `minicam.suite.widgets.explorer`, one per model (built when the model is first picked, then kept), under a
row of model buttons, with a style sheet that makes the controls readable from the back of a room. The images
are held-out shapes (seed 1000, never trained on); the biased model gets images drawn the way it was trained
(the cue spot with the class it stands for), so the lecturer can show what it looks at.
"""
from __future__ import annotations

import ipywidgets as widgets

from .. import models
from ..data import CLASSES, make_shapes
from .widgets import explorer

__all__ = ["lecture_hall", "STYLE"]

# The explorer's own controls, enlarged (ipywidgets 8 class names); scoped to the hall's box.
STYLE = """<style>
.minicam-hall, .minicam-hall .widget-label, .minicam-hall .widget-readout, .minicam-hall select,
.minicam-hall button, .minicam-hall .widget-html-content { font-size: 22px !important; }
.minicam-hall .widget-label { min-width: 5em; }
.minicam-hall .widget-inline-hbox, .minicam-hall .widget-dropdown, .minicam-hall .widget-slider { height: 44px; }
.minicam-hall select { height: 40px !important; }
.minicam-hall .widget-toggle-buttons button { min-width: 12em; height: 44px; }
.minicam-hall .ui-slider-handle { width: 22px !important; height: 22px !important; top: -8px !important; }
.minicam-hall img.widget-image { width: min(100%, 1100px); height: auto; }
</style>"""


def _images(name: str, n: int):
    return make_shapes(n, seed=1000, bias="train" if name.endswith("_biased") else None).images


def lecture_hall(names=models.SHIPPED, n_images: int = 16) -> widgets.VBox:
    """A model picker over one explorer per model. names: shipped model names (default: all of
    `minicam.models.SHIPPED`); n_images: how many held-out images each explorer offers (1 to 64)."""
    names = list(names)
    unknown = [n for n in names if n not in models.SHIPPED]
    if not names or unknown:
        raise ValueError(f"names must be shipped models, some of {models.SHIPPED}; got {names!r}")
    if not isinstance(n_images, int) or isinstance(n_images, bool) or not 1 <= n_images <= 64:
        raise ValueError(f"n_images must be an int from 1 to 64, got {n_images!r}")
    built: dict[str, widgets.Widget] = {}
    picker = widgets.ToggleButtons(options=names, value=names[0], description="model")
    holder = widgets.Box()

    def show(name):
        if name not in built:
            built[name] = explorer(models.load_pretrained(name), _images(name, n_images), class_names=CLASSES)
        holder.children = (built[name],)

    picker.observe(lambda change: show(change["new"]), names="value")
    show(names[0])
    hall = widgets.VBox([widgets.HTML(STYLE), picker, holder])
    hall.add_class("minicam-hall")
    hall.explorers = built
    return hall
