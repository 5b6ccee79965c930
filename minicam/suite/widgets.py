"""An interactive explorer: pick an image, a layer, a class and a method, and see the map.

    from minicam.suite.widgets import explorer
    explorer(model, images, class_names=CLASSES)     # the last expression of a notebook cell

The view: the controls; a line naming the setting; the picture (`minicam.suite.explorer_figure`: the image,
the map on the image, the raw map with its colour bar, as PNG in an `ipywidgets.Image`); and a table
of the top predictions. The explorer is state, controls and a cache; the maps come from the method
table `minicam.methods.METHODS`, so a new method there is a new entry of the menu.

An image's maps are computed for its TOP_CLASSES best classes at once (every class of a model with
at most that many), with a (1, T) target: one forward pass and one backward pass per class, cached per
(image, layer). So switching class costs no forward pass, and neither does switching within the CAM
family (CAM, Grad-CAM, its counterfactual and Grad-CAM++), which all come from that one `Capture`; the
other methods are cached the same way, per (method, image, layer). A class outside the top ones is
computed on its own (one pass) and cached too. The maps are the numbers the direct minicam calls give
(tests/test_widgets.py checks every position of the controls on a small model).
Only the method's own `NotApplicable` is a notice ("not available here"); any other exception, e.g.
a bug in the model, is an error: shown as one, in place of the map, and not cached.
"""
from __future__ import annotations

import contextlib
import html
from collections import OrderedDict

import ipywidgets as widgets
import torch
from torch import nn
from torchvision.models import ResNet

from .. import models
from ..checks import NotApplicable, check_images, check_model, resolve_layer, whole_number
from ..hooks import Trace, capture, explainable, trace
from ..methods import METHODS as TABLE
from .explorer_figure import ExplorerFigure

__all__ = ["explorer", "Explorer", "default_layers", "METHODS"]

METHODS = tuple(name for name, method in TABLE.items() if method.explorer)  # offered unless methods= says
INPUT_METHODS = tuple(name for name, method in TABLE.items() if not method.needs_layer)
LAYER_METHODS = tuple(name for name in METHODS if name not in INPUT_METHODS)
PROBS = ("sigmoid", "softmax")
CACHE_SIZE = 512  # cached maps and captures; a 64x64 image's capture at an early layer is ~0.5 MB per class
TOP_CLASSES = 8  # an image's best classes, whose maps come from one forward pass (the predictions table's rows)


def as_model(model) -> nn.Module:
    """model itself, or for the name of a shipped model (minicam.models.PRETRAINED) that model, loaded."""
    if isinstance(model, str):
        if model not in models.PRETRAINED:
            raise ValueError(f"model {model!r} is not a shipped model; give an nn.Module or one of the names "
                             f"{list(models.PRETRAINED)}")
        return models.load_pretrained(model)
    return check_model(model)


def _as_list(value, name: str) -> list:
    """value as a list: one string (or module) is a list of one; None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, nn.Module)):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of names (or one name), got {type(value).__name__}")
    return list(value)


def default_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The explorer's default layers, in forward order: every module that runs exactly once and
    outputs (N, K, h, w) and is either an nn.ReLU (the rectified output of a conv, where the papers
    take their maps; e.g. relu1..relu6 of ShapesVGG) or one of layer1..layer4 of a torchvision ResNet
    (its blocks reuse one ReLU twice, so the stage is the unit to look at). If there is none, every
    nn.Conv2d that runs once. x: one or more images (N, C, H, W)."""
    model = as_model(model)
    return _default_layers(model, trace(model, check_images(x)))


def _default_layers(model, found: Trace) -> list[str]:
    modules = dict(model.named_modules())
    stages = {f"layer{i}" for i in range(1, 5)} if isinstance(model, ResNet) else set()
    chosen = [n for n in explainable(found) if isinstance(modules[n], nn.ReLU) or n in stages]
    return chosen or [n for n in explainable(found) if isinstance(modules[n], nn.Conv2d)]


def _layer_name(model, layer, found: Trace) -> str:
    """The name of `layer` in the model, or an error that also lists the layers that output maps."""
    try:
        return resolve_layer(model, layer)[0]
    except ValueError as err:
        raise ValueError(f"{err}; choose layers that output (N, K, h, w) maps, e.g. {explainable(found)[-4:]}") from None


def _check_explorer_images(images) -> torch.Tensor:
    """images (N >= 1, 1 or 3 channels, finite) detached, or an error naming images."""
    images = check_images(images, "images").detach()
    if len(images) == 0 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with N >= 1 and C = 1 or 3 (to be shown), "
                         f"got shape {tuple(images.shape)}")
    return images


def _check_names(class_names):
    """class_names as a list (None stays None); one string is refused, it would be one name per letter."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not hasattr(class_names, "__len__") or not hasattr(class_names, "__iter__"):
        raise TypeError(f"class_names must be a list with one name per class (e.g. ['circle', 'square']), "
                        f"got {type(class_names).__name__} {class_names!r}")
    return list(class_names)


class Explorer:
    """The explorer's state, controls and cache; `Explorer(...).widget` is what a notebook shows,
    and `widget.explorer` leads back here.

    model: a classifier returning scores (N, classes), or the name of a shipped model ("shapes_vgg",
    see minicam.models.PRETRAINED), which is loaded. images: (N, 1 or 3, H, W), finite, in [0, 1]
    (shown clamped to [0, 1]). class_names: a list, one per output (default "class 0", ...); a single
    string is refused. layers: names (or modules) whose output is (N, K, h, w) and that run once per
    forward pass, shown in forward order (default: `default_layers`); one name is a list of one.
    methods: names from `minicam.methods.METHODS` (default: METHODS); one name is a list of one.
    prob: "sigmoid" (default: minicam's shapes models are multi-label, each class is present when
    sigmoid(y^c) > 0.5) or "softmax" (single-label classifiers), for the probabilities shown beside
    the logits. threads: torch threads while the explorer computes (restored afterwards); one image's
    passes through a small CNN are fastest in 1, and on a busy machine many times faster than in 2;
    None keeps torch's setting.

    After every render: `current_map` is the raw map shown, exactly what the direct minicam call
    returns for that one image (batch dimension dropped: (h, w), (H, W) for saliency, (C, H, W) for
    guided backprop and Guided Grad-CAM) or None; `message` says why there is no map (the method's
    NotApplicable, the one notice, shown in place of the map); `error` keeps any other exception --
    an error of the model itself included -- shown in red in place of the map and below the picture
    (ipywidgets would swallow it), and never cached. `png` holds the picture's bytes.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, class_names=None, layers=None, methods=None,
                 prob: str = "sigmoid", threads: int | None = 1):
        images = _check_explorer_images(images)
        if prob not in PROBS:
            raise ValueError(f"prob must be one of {PROBS}, got {prob!r}")
        threads = None if threads is None else whole_number(threads, "threads", 1, floats=False,
                                                               want="a positive integer, or None")
        class_names, layers = _check_names(class_names), _as_list(layers, "layers")
        methods = _as_list(methods, "methods")
        self.model, self.images, self.prob, self.threads = as_model(model), images, prob, threads
        self.methods = self._check_methods(methods)
        with self._threads():
            found = trace(self.model, images)
        self.scores = found.scores
        best = self.scores.argsort(dim=1, descending=True)[:, :TOP_CLASSES]
        self.top = [tuple(sorted(row)) for row in best.tolist()]  # each image's classes computed together
        self.probs = torch.sigmoid(self.scores) if prob == "sigmoid" else torch.softmax(self.scores, dim=1)
        self.class_names = self._check_class_names(class_names)
        self.layers = self._check_layers(found, layers)
        self._cache: OrderedDict = OrderedDict()
        self.current_map = self.message = self.error = None
        self.png = b""
        self._busy = False
        self.figure = ExplorerFigure(images)
        self._build_widget()
        self.render()

    # ---- checking the arguments ------------------------------------------------------------

    def _check_class_names(self, class_names) -> list[str]:
        num_classes = self.scores.shape[1]
        if not torch.isfinite(self.scores).all():
            raise ValueError("the model's scores on images are not all finite (NaN or inf); the explorer needs "
                             "finite scores: check the model and the images")
        if class_names is None:
            return [f"class {k}" for k in range(num_classes)]
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but the model gives {num_classes} "
                             f"scores per image; give one name per output")
        return [str(name) for name in class_names]

    def _check_layers(self, found: Trace, layers) -> list[str]:
        if layers is None:
            names = _default_layers(self.model, found)
            if not names:
                raise ValueError("the model has no layer with (N, K, h, w) output that runs once per forward "
                                 "pass; pass layers=[...] by name")
            return names
        names = [_layer_name(self.model, layer, found) for layer in layers]
        if not names:
            raise ValueError("layers is empty; give at least one layer name, or None for the default")
        for name in names:
            if name not in explainable(found):
                raise ValueError(f"layer {name!r} does not output one (N, K, h, w) map per image: it runs "
                                 f"{found.runs.get(name, 0)} times with output {found.shapes.get(name)}; choose a conv "
                                 f"layer or block that runs once, e.g. one of {explainable(found)[-3:]}")
        return sorted(dict.fromkeys(names), key=found.order.index)

    def _check_methods(self, methods) -> list[str]:
        if methods is None:
            return list(METHODS)
        unknown = [m for m in methods if not isinstance(m, str) or m not in TABLE]
        if unknown or not methods:
            raise ValueError(f"unknown methods {unknown}; choose from {list(TABLE)}" if unknown
                             else f"methods is empty; choose from {list(TABLE)}")
        return methods

    # ---- the maps ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _threads(self):
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def clear_cache(self):
        """Forget every cached pass and map (needed only if the model's weights change)."""
        self._cache.clear()

    def _cached(self, key, compute):
        """compute(), remembered under key (the least recently used of CACHE_SIZE entries goes first);
        a NotApplicable is remembered too, and raised again."""
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            try:
                self._cache[key] = compute()
            except NotApplicable as e:
                self._cache[key] = e
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        if isinstance(self._cache[key], NotApplicable):
            raise self._cache[key]
        return self._cache[key]

    def compute(self, method: str, layer: str, target: int, index: int) -> torch.Tensor:
        """The raw map of `method` for image `index` and class `target` (at `layer` for layer methods),
        as the direct minicam call gives it for that image, batch dimension dropped.
        Raises NotApplicable where the method does not apply (CAM away from the GAP layer); an error
        of the model itself is raised as it is, and not cached."""
        method, layer, target, index = self._check_position(method, layer, target, index)
        entry, x = TABLE[method], self.images[index:index + 1]
        classes = self.top[index] if target in self.top[index] else (target,)
        targets = torch.tensor([classes])  # (1, T): the maps of T classes from one forward pass
        if entry.weights is not None:  # the CAM family: from the one cached pass to the layer
            cap = self._cached(("capture", index, layer, classes), lambda: capture(self.model, x, targets, layer))
            maps = self._cached(("from capture", method, index, layer, classes), lambda: _explained(
                f"{method} at {layer!r}", lambda: entry.from_capture(self.model, layer, cap, targets)[0]))
        else:
            where = f"{method} at {layer!r}" if entry.needs_layer else method
            maps = self._cached((method, index, classes) + ((layer,) if entry.needs_layer else ()),
                                lambda: _explained(where, lambda: entry(self.model, x, targets, layer)[0]))
        return maps[classes.index(target)]

    def _check_position(self, method, layer, target, index) -> tuple:
        """(method, layer name, target, index) as the controls hold them, or an error naming the argument:
        a method of the menu, a layer of the slider (name or module), whole numbers in range (numpy
        integers count)."""
        if not isinstance(method, str) or method not in self.methods:
            raise ValueError(f"method must be one of the explorer's methods {self.methods}, got {method!r}")
        try:
            name = resolve_layer(self.model, layer)[0]
        except (TypeError, ValueError):
            name = None
        if name not in self.layers:
            raise ValueError(f"layer must be one of the explorer's layers {self.layers}, got {layer!r}")
        classes, images = f"a class index in 0..{len(self.class_names) - 1}", f"an image index in 0..{len(self.images) - 1}"
        target = whole_number(target, "target", 0, floats=False, want=classes)
        index = whole_number(index, "index", 0, floats=False, want=images)
        if target >= len(self.class_names):
            raise ValueError(f"target must be {classes}, got {target}")
        if index >= len(self.images):
            raise IndexError(f"index must be {images}, got {index}")
        return method, name, target, index

    # ---- the widget ------------------------------------------------------------------------

    def _class_options(self, index: int):
        return [(f"{name} ({score:.2f})", k) for k, (name, score) in
                enumerate(zip(self.class_names, self.scores[index].tolist()))]

    def _build_widget(self):
        wide = widgets.Layout(width="380px")
        self.image_slider = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                              continuous_update=False, layout=wide)
        self.class_menu = widgets.Dropdown(options=self._class_options(0), value=int(self.scores[0].argmax()),
                                           description="class", layout=wide)
        self.layer_slider = widgets.SelectionSlider(options=self.layers, value=self.layers[-1],
                                                    description="layer", continuous_update=False, layout=wide)
        self.method_menu = widgets.Dropdown(options=self.methods, description="method", layout=wide)
        self.picture = widgets.Image(format="png")
        self.header, self.predictions, self.status = widgets.HTML(), widgets.HTML(), widgets.HTML()
        for control in (self.image_slider, self.class_menu, self.layer_slider, self.method_menu):
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.image_slider, self.class_menu]),
                                    widgets.HBox([self.layer_slider, self.method_menu]),
                                    self.header, widgets.HBox([self.picture, self.predictions],
                                                              layout=widgets.Layout(flex_flow="row wrap")),
                                    self.status])
        self.widget.explorer = self

    def _changed(self, change):
        if self._busy:
            return
        if change["owner"] is self.image_slider:
            self._relabel_classes(change["new"])
        self.render()

    def _relabel_classes(self, index: int):
        """The class labels carry each image's scores: relabel them, keeping the chosen class."""
        busy, self._busy = self._busy, True
        try:
            target = self.class_menu.value
            self.class_menu.options = self._class_options(index)
            self.class_menu.value = target
        finally:
            self._busy = busy

    def show(self, layer=None, target=None, method=None, index=None):
        """Move the controls (None leaves one as it is), render once, and return `current_map` (None
        where there is no map: see `message` and `error`). A bad position is refused before any
        control moves."""
        method, layer, target, index = self._check_position(
            self.method_menu.value if method is None else method, self.layer_slider.value if layer is None else layer,
            self.class_menu.value if target is None else target, self.image_slider.value if index is None else index)
        self._busy = True
        try:
            if index != self.image_slider.value:
                self.image_slider.value = index
                self._relabel_classes(index)
            for control, value in ((self.layer_slider, layer), (self.class_menu, target),
                                   (self.method_menu, method)):
                control.value = value
        finally:
            self._busy = False
        self.render()
        return self.current_map

    def render(self):
        """Compute and draw the map the controls select. Never raises: a method that does not apply
        is shown as `message` (a notice in place of the map); anything else -- an error of the model
        itself included -- is kept as `error` and shown as an error, in the picture in place of the map
        and as red text below it, and is not cached (the next render tries again)."""
        self.current_map = self.message = self.error = None
        method, layer = self.method_menu.value, self.layer_slider.value
        target, index = self.class_menu.value, self.image_slider.value
        try:
            self.layer_slider.disabled = not TABLE[method].needs_layer
            try:
                with self._threads():
                    self.current_map = self.compute(method, layer, target, index)
            except NotApplicable as e:
                self.message = str(e) or f"{method} does not apply here"
            self._draw(method, layer, target, index)
            self.status.value = ""
        except Exception as e:  # noqa: BLE001 -- shown to the user instead of lost in a callback
            self.current_map, self.message, self.error = None, None, e
            text = f"{type(e).__name__}: {e}"
            self.status.value = (f"<pre style='color:#b00020;white-space:pre-wrap'>explorer error: "
                                 f"{html.escape(text)}</pre>")
            with contextlib.suppress(Exception):  # no stale map: the picture shows the error instead
                self._draw(method, layer, target, index, error=f"error: {text}")

    def _draw(self, method, layer, target, index, error=None):
        raw = self.current_map
        where = f"layer {layer}" if TABLE[method].needs_layer else "input pixels"
        size = "" if raw is None else " · raw map " + "×".join(map(str, raw.shape))
        self.header.value = (f"<b>{html.escape(method)}</b> · {html.escape(where)} · class <b>"
                             f"{html.escape(self.class_names[target])}</b> (logit {self.scores[index, target]:.2f}, "
                             f"{self.prob} {self.probs[index, target]:.3f}){size}")
        self.predictions.value = self._prediction_html(index, target)
        self.png = (self.figure.render(index, None, error, error=True) if error is not None
                    else self.figure.render(index, raw, self.message))
        self.picture.value = self.png

    def _prediction_html(self, index: int, target: int) -> str:
        """The top classes of image `index` with logits and probabilities; the chosen class in bold."""
        scores, probs = self.scores[index], self.probs[index]

        def row(cells, bold):
            tds = "".join(f"<td style='padding:0 6px;text-align:{'left' if i == 0 else 'right'}'>{text}</td>"
                          for i, text in enumerate(cells))
            return f"<tr style='font-weight:{'bold' if bold else 'normal'}'>{tds}</tr>"

        rows = [row(("class", "logit", self.prob), True)] + [
            row((html.escape(self.class_names[k]), f"{scores[k]:.2f}", f"{probs[k]:.3f}"), k == target)
            for k in scores.argsort(descending=True)[:8].tolist()]
        return ("<div style='font-family:monospace;line-height:1.3'><b>top predictions</b>"
                f"<table style='border-collapse:collapse'>{''.join(rows)}</table></div>")


def _explained(where: str, compute):
    """compute(), with a NotApplicable's message saying which method and layer it is about."""
    try:
        return compute()
    except NotApplicable as e:
        raise NotApplicable(f"{where} is not available for this model: {e}") from e


def explorer(model: nn.Module, images: torch.Tensor, class_names=None, layers=None, methods=None,
             prob: str = "sigmoid", threads: int | None = 1) -> widgets.VBox:
    """An ipywidgets explorer of `model`'s maps on `images` (N, C, H, W): sliders for the image and
    the layer, menus for the class (labelled with this image's scores) and the method. Put it as the
    last expression of a cell. The arguments are Explorer's; the Explorer is `widget.explorer`."""
    return Explorer(model, images, class_names=class_names, layers=layers, methods=methods, prob=prob,
                    threads=threads).widget
