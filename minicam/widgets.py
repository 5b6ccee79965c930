"""An interactive explorer: pick an image, a layer, a class and a method, and see the map.

    from minicam.widgets import explorer
    explorer(model, images, class_names=CLASSES)     # the last expression of a notebook cell

The view: the controls; a line naming the setting; one persistent matplotlib figure with three
panels -- the image, the map upsampled and normalised on the image (`minicam.viz.overlay`), the raw
map with its colour bar (`minicam.viz.show_map`) -- rendered to PNG in an `ipywidgets.Image`; and a
table of the top predictions. A change of control updates only the figure's changing artists on a
saved background (blitting) and encodes the PNG: ~50 ms in all on the shapes VGG, where a full
redraw took about three times as long (benchmarks/explorer_latency.py).

Each image's forward and backward pass to a layer is cached per (image, layer, class): CAM, Grad-CAM,
its counterfactual and Grad-CAM++ all come from that one `Capture`, so switching between them costs
no pass, and a class or layer change costs one. The maps are the numbers the direct minicam calls
give (tests/test_widgets.py checks every position of the controls).
"""
from __future__ import annotations

import contextlib
import html
import io
import math
import textwrap
from collections import OrderedDict

import PIL.Image
import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn
from torchvision.models import ResNet

from .gradients import gradcam_weights, gradcampp_weights, guided_backprop, saliency, weighted_sum
from .hooks import capture, check_images, check_scores, preserved, resolve_layer
from .lrp import relevance_cam
from .maps import normalize, upsample
from .viz import overlay, show_map, to_rgb

# Methods that compute a map at a layer, and methods that explain the input pixels directly.
LAYER_METHODS = ("Grad-CAM", "Grad-CAM (counterfactual)", "Grad-CAM++", "CAM", "Guided Grad-CAM", "Relevance-CAM")
INPUT_METHODS = ("saliency", "guided backprop")
METHODS = LAYER_METHODS + INPUT_METHODS
PROBS = ("sigmoid", "softmax")
BAR_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where the raw map's colour bar is labelled, as fractions of it
CACHE_SIZE = 512  # cached maps and captures; a 64x64 image's capture at an early layer is ~0.5 MB


class Undefined(Exception):
    """A method that is not defined at this setting (e.g. CAM away from the GAP layer): shown as a
    message in the view, not an error."""


def default_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The explorer's default layers, in forward order: every module that runs exactly once and
    outputs (N, K, h, w) and is either an nn.ReLU (the rectified output of a conv, where the papers
    take their maps; e.g. relu1..relu6 of ShapesVGG) or one of layer1..layer4 of a torchvision ResNet
    (its blocks reuse one ReLU twice, so the stage is the unit to look at). If there is none, every
    nn.Conv2d that runs once. x: one or more images (N, C, H, W)."""
    return _default_layers(model, _trace(model, check_images(x)))


def _default_layers(model, trace) -> list[str]:
    modules = dict(model.named_modules())
    once = [name for name in trace.order if trace.runs[name] == 1 and trace.ndim[name] == 4]
    stages = {f"layer{i}" for i in range(1, 5)} if isinstance(model, ResNet) else set()
    chosen = [n for n in once if isinstance(modules[n], nn.ReLU) or n in stages]
    return chosen or [n for n in once if isinstance(modules[n], nn.Conv2d)]


class _Trace:
    """What one forward pass shows about a model: modules in the order they finish, how often each
    runs, the dimension of its output, the spatial mean of 4-D outputs, the inputs of Linear layers."""

    def __init__(self):
        self.order, self.runs, self.ndim, self.means, self.linear_inputs = [], {}, {}, {}, {}
        self.scores = None


def _trace(model: nn.Module, x: torch.Tensor) -> _Trace:
    trace = _Trace()

    def after(name):
        def hook(_module, _inputs, out):
            if name not in trace.runs:
                trace.order.append(name)
                trace.ndim[name] = out.dim() if isinstance(out, torch.Tensor) else None
                if trace.ndim[name] == 4:
                    trace.means[name] = out.detach().mean(dim=(2, 3))
            trace.runs[name] = trace.runs.get(name, 0) + 1
        return hook

    def before(name):
        def hook(_module, inputs):
            trace.linear_inputs.setdefault(name, inputs[0].detach())
        return hook

    handles = []
    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(after(name)))
            if isinstance(module, nn.Linear):
                handles.append(module.register_forward_pre_hook(before(name)))
        with preserved(model), torch.no_grad():
            trace.scores = check_scores(model(x))
    finally:
        for handle in handles:
            handle.remove()
    return trace


class Explorer:
    """The explorer's state, its computation and its drawing; `Explorer(...).widget` is what a
    notebook shows, and `widget.explorer` leads back here.

    model: a classifier returning scores (N, classes). images: (N, 1 or 3, H, W) in [0, 1] (shown
    clamped to [0, 1]). class_names: one per output (default "class 0", ...). layers: names (or
    modules) whose output is (N, K, h, w) and that run once per forward pass, shown in forward order
    (default: `default_layers`). methods: a subset of METHODS (default all). prob: "sigmoid" (default:
    minicam's shapes models are multi-label, each class is present when sigmoid(y^c) > 0.5) or
    "softmax" (single-label classifiers), for the probabilities shown beside the logits. threads: torch
    threads while the explorer computes (restored afterwards); one image's passes through a small CNN
    are fastest in 1, and on a busy machine many times faster than in 2; None keeps torch's setting.

    After every render: `current_map` is the raw map shown, exactly what the direct minicam call
    returns for that one image (batch dimension dropped: (h, w), (H, W) for saliency, (C, H, W) for
    guided backprop and Guided Grad-CAM) or None; `message` says why there is no map (a method not
    defined at this layer); `error` keeps an unexpected exception, also shown as text in the widget
    (ipywidgets would swallow it). `png` holds the picture's bytes.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, class_names=None, layers=None, methods=None,
                 prob: str = "sigmoid", threads: int | None = 1):
        images = check_images(images).detach()
        if len(images) == 0 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, C, H, W) with N >= 1 and C = 1 or 3 (to be shown), "
                             f"got shape {tuple(images.shape)}")
        if prob not in PROBS:
            raise ValueError(f"prob must be one of {PROBS}, got {prob!r}")
        self.model, self.images, self.prob, self.threads = model, images, prob, threads
        with self._threads():
            trace = _trace(model, images)
        self.scores = trace.scores
        self.probs = torch.sigmoid(self.scores) if prob == "sigmoid" else torch.softmax(self.scores, dim=1)
        num_classes = self.scores.shape[1]
        if class_names is None:
            class_names = [f"class {k}" for k in range(num_classes)]
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but the model gives {num_classes} "
                             f"scores per image; give one name per output")
        self.class_names = [str(name) for name in class_names]
        self.layers = self._check_layers(trace, layers)
        linears = [n for n in trace.order if n in trace.linear_inputs]  # CAM's fc: the last one to run
        self.fc_name = linears[-1] if linears else None
        self.fc = dict(model.named_modules())[self.fc_name] if linears else None
        self.cam_layers = self._cam_layers(trace)
        self.methods = self._check_methods(methods)
        self._cache: OrderedDict = OrderedDict()
        self.current_map = self.message = self.error = None
        self.png = b""
        self._busy = False
        self._build_widget()
        self.render()

    # ---- checking the arguments ------------------------------------------------------------

    def _check_layers(self, trace: _Trace, layers) -> list[str]:
        if layers is None:
            names = _default_layers(self.model, trace)
            if not names:
                raise ValueError("the model has no layer with (N, K, h, w) output that runs once per forward "
                                 "pass; pass layers=[...] by name")
            return names
        names = [resolve_layer(self.model, layer)[0] for layer in layers]
        if not names:
            raise ValueError("layers is empty; give at least one layer name, or None for the default")
        for name in names:
            if trace.runs.get(name, 0) != 1:
                raise ValueError(f"layer {name!r} runs {trace.runs.get(name, 0)} times in one forward pass; "
                                 "choose a layer that runs exactly once (e.g. its parent block)")
            if trace.ndim[name] != 4:
                raise ValueError(f"layer {name!r} does not output (N, K, h, w) maps; choose a conv layer "
                                 f"or block, e.g. one of {self._example_layers(trace)}")
        return sorted(dict.fromkeys(names), key=trace.order.index)

    def _example_layers(self, trace: _Trace) -> list[str]:
        return [n for n in trace.order if trace.runs[n] == 1 and trace.ndim[n] == 4][-3:]

    def _cam_layers(self, trace: _Trace) -> list[str]:
        """Layers whose global average pool is exactly the input of the last linear layer (as
        `minicam.cam` checks), on every image."""
        if self.fc is None:
            return []
        fc_in = trace.linear_inputs[self.fc_name]
        return [n for n in self.layers if trace.means[n].shape == fc_in.shape
                and torch.allclose(fc_in, trace.means[n], rtol=1e-4, atol=1e-5)]

    def _check_methods(self, methods) -> list[str]:
        offered = [m for m in METHODS if m != "CAM" or self.fc is not None]
        if methods is None:
            return offered
        methods = list(methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}" if unknown
                             else f"methods is empty; choose from {list(METHODS)}")
        if "CAM" in methods and self.fc is None:
            raise ValueError("CAM needs the model to end in global average pooling and an nn.Linear; this "
                             "model has no nn.Linear. Leave CAM out (Grad-CAM needs no GAP)")
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
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = compute()
        self._cache[key] = value
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    def _capture(self, index: int, layer: str, target: int):
        x = self.images[index:index + 1]
        return self._cached(("capture", index, layer, target), lambda: capture(self.model, x, target, layer))

    def compute(self, method: str, layer: str, target: int, index: int) -> torch.Tensor:
        """The raw map of `method` for image `index` and class `target` (at `layer` for layer methods),
        as the direct minicam call gives it for that image, batch dimension dropped.
        Raises Undefined where the method does not apply (CAM away from the GAP layer)."""
        x = self.images[index:index + 1]
        if method in ("Grad-CAM", "Grad-CAM (counterfactual)", "Grad-CAM++", "CAM"):
            _, acts, grads = self._capture(index, layer, target)
            if method == "Grad-CAM":
                return weighted_sum(gradcam_weights(grads), acts)[0]
            if method == "Grad-CAM (counterfactual)":
                return weighted_sum(gradcam_weights(-grads), acts)[0]
            if method == "Grad-CAM++":
                return weighted_sum(gradcampp_weights(acts, grads), acts)[0]
            if layer not in self.cam_layers:
                where = f"here that is {self.cam_layers[0]!r}" if self.cam_layers else \
                    "none of the explorer's layers is one"
                raise Undefined(f"CAM is only defined at the layer whose global average pool feeds the last "
                                f"linear layer directly ({where}), not at {layer!r}. Move the layer slider, "
                                f"or use Grad-CAM, which works at any layer.")
            weights = self.fc.weight.detach()[[target]]  # (1, K): w^c_k, as minicam.cam takes them
            return weighted_sum(weights, acts, relu=False)[0]
        if method == "Guided Grad-CAM":  # the same two steps as minicam.guided_gradcam
            maps = upsample(self.compute("Grad-CAM", layer, target, index)[None], x.shape[-2:])
            return (self.compute("guided backprop", layer, target, index)[None] * maps[:, None])[0]
        if method == "Relevance-CAM":
            return self._applicable(("Relevance-CAM", index, layer, target), f"Relevance-CAM at {layer!r}",
                                    lambda: relevance_cam(self.model, x, target, layer)[0])
        if method == "saliency":
            return self._cached(("saliency", index, target), lambda: saliency(self.model, x, target)[0])
        if method == "guided backprop":
            return self._applicable(("guided backprop", index, target), "guided backprop",
                                    lambda: guided_backprop(self.model, x, target)[0])
        raise ValueError(f"unknown method {method!r}; choose from {self.methods}")

    def _applicable(self, key, what: str, compute):
        """Cached compute(), where minicam's ValueError/NotImplementedError means that the method does
        not apply to this model or layer (LRP's supported layers; guided backprop's nn.ReLU modules)."""
        def attempt():
            try:
                return compute()
            except (ValueError, NotImplementedError) as e:
                return Undefined(f"{what} is not available for this model: {e}")
        result = self._cached(key, attempt)
        if isinstance(result, Undefined):
            raise result
        return result

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
        self._build_figure()

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
        """Move the controls (None leaves one as it is), render once, and return `current_map`."""
        self._busy = True
        try:
            if index is not None:
                self.image_slider.value = index
                self._relabel_classes(index)
            for control, value in ((self.layer_slider, layer), (self.class_menu, target),
                                   (self.method_menu, method)):
                if value is not None:
                    control.value = value
        finally:
            self._busy = False
        self.render()
        return self.current_map

    def render(self):
        """Compute and draw the map the controls select. Never raises: a method that does not apply
        is shown as `message`, anything else as `error`, both as text in the widget."""
        self.current_map = self.message = self.error = None
        try:
            method, layer = self.method_menu.value, self.layer_slider.value
            target, index = self.class_menu.value, self.image_slider.value
            self.layer_slider.disabled = method in INPUT_METHODS
            try:
                with self._threads():
                    self.current_map = self.compute(method, layer, target, index)
            except Undefined as e:
                self.message = str(e)
            self._draw(method, layer, target, index)
            self.status.value = ""
        except Exception as e:  # noqa: BLE001 -- shown to the user instead of lost in a callback
            self.error = e
            self.status.value = (f"<pre style='color:#b00020;white-space:pre-wrap'>explorer error: "
                                 f"{html.escape(type(e).__name__)}: {html.escape(str(e))}</pre>")

    # ---- the figure ------------------------------------------------------------------------

    def _build_figure(self):
        """Draw the panels once and keep the picture without the artists that change as a background;
        a render pastes a background back and draws only those artists (blitting). The raw map's
        colour bar is an image of the colour map with five labels of our own: matplotlib's tick
        machinery would cost most of a redraw."""
        self.figure = Figure(figsize=(9.2, 3.0), dpi=80)
        canvas = FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.01, right=0.88, bottom=0.03, top=0.90, wspace=0.25)
        ax_image, ax_overlay, ax_raw = self.figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.15, 1.15]})
        image = self.images[0]
        blank = torch.zeros(image.shape[-2:])
        self._image = ax_image.imshow(to_rgb(image))
        ax_image.axis("off")
        self._heat = overlay(image, blank, ax=ax_overlay, title="map on the image (normalised)")
        self._overlay_base = ax_overlay.images[0]
        self._raw = show_map(blank, ax=ax_raw, title="raw map", colorbar=False)
        bar_axes = ax_raw.inset_axes([1.05, 0.0, 0.07, 1.0])
        self._bar = bar_axes.imshow(torch.linspace(0, 1, 256)[:, None].numpy(), cmap="jet", aspect="auto",
                                    origin="lower", extent=(0, 1, 0, 1))
        bar_axes.set_xticks([])
        bar_axes.set_yticks([])
        self._tick_labels = []
        for fraction in BAR_TICKS:
            bar_axes.plot([1.0, 1.25], [fraction, fraction], color="black", lw=0.8, clip_on=False,
                          transform=bar_axes.transAxes)
            self._tick_labels.append(bar_axes.text(1.5, fraction, "", va="center", fontsize=9,
                                                   transform=bar_axes.transAxes))
        self._bar_scale = bar_axes.text(0.0, 1.03, "", va="bottom", fontsize=9, transform=bar_axes.transAxes)
        self._message = self.figure.text(0.62, 0.5, "", ha="center", va="center", fontsize=11,
                                         bbox={"facecolor": "#fff4d6", "edgecolor": "#c90"})
        self._image_title = ax_image.set_title(" ")
        self._per_image = [self._image_title, self._image, self._overlay_base]
        self._map_artists = [self._heat, self._raw, self._bar, self._bar_scale] + self._tick_labels
        for artist in self._per_image + self._map_artists + [self._message]:
            artist.set_animated(True)
        canvas.draw()
        self._background = {True: canvas.copy_from_bbox(self.figure.bbox)}
        # Without a map, the map panels are just the image: a background without their titles and bars.
        for artist in (ax_overlay.title, self._heat.colorbar.ax, ax_raw.title, bar_axes):
            artist.set_visible(False)
        canvas.draw()
        self._background[False] = canvas.copy_from_bbox(self.figure.bbox)
        self._image_backgrounds: OrderedDict = OrderedDict()  # (index, with map) -> background with the image

    def _draw(self, method, layer, target, index):
        image, raw = self.images[index], self.current_map
        name = self.class_names[target]
        where = "input pixels" if method in INPUT_METHODS else f"layer {layer}"
        size = "" if raw is None else " · raw map " + "×".join(map(str, raw.shape))
        self.header.value = (f"<b>{html.escape(method)}</b> · {html.escape(where)} · class <b>{html.escape(name)}"
                             f"</b> (logit {self.scores[index, target]:.2f}, {self.prob} "
                             f"{self.probs[index, target]:.3f}){size}")
        self.predictions.value = self._prediction_html(index, target)
        canvas = self.figure.canvas
        canvas.restore_region(self._image_background(index, raw is not None))
        if raw is None:
            self._message.set_text(textwrap.fill(self.message, 60))
            self.figure.draw_artist(self._message)
        else:
            self._draw_map(raw, image)
            for artist in self._map_artists:
                self.figure.draw_artist(artist)
        width, height = canvas.get_width_height()
        buffer = io.BytesIO()
        PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1) \
            .convert("RGB").save(buffer, format="png", compress_level=1)  # level 1: fast, and still small
        self.png = buffer.getvalue()
        self.picture.value = self.png

    def _image_background(self, index: int, with_map: bool):
        """The background with image `index` drawn in, made once per image (the image changes least)."""
        key = (index, with_map)
        if key not in self._image_backgrounds:
            canvas = self.figure.canvas
            canvas.restore_region(self._background[with_map])
            self._image_title.set_text(f"image {index}")
            for artist in (self._image, self._overlay_base):
                artist.set_data(to_rgb(self.images[index]))
            for artist in self._per_image:
                self.figure.draw_artist(artist)
            self._image_backgrounds[key] = canvas.copy_from_bbox(self.figure.bbox)
            if len(self._image_backgrounds) > 16:  # ~0.7 MB each
                self._image_backgrounds.popitem(last=False)
        self._image_backgrounds.move_to_end(key)
        return self._image_backgrounds[key]

    def _draw_map(self, raw: torch.Tensor, image: torch.Tensor):
        raw = raw.detach().float()
        if raw.dim() == 3:  # (C, H, W) gradients: RGB, grey = 0 (overlay: max over channels of |.|)
            extent = raw.abs().max().item() or 1.0
            self._raw.set_data((0.5 + raw / (2 * extent)).permute(1, 2, 0).cpu().numpy())
            low, high, cmap = -extent, extent, "gray"
            flat = raw.abs().amax(dim=0)
        else:
            low, high = raw.min().item(), raw.max().item()
            high = high if high > low else low + 1  # a constant map still gets a scale
            self._raw.set_data(raw.cpu().numpy())
            self._raw.set_clim(low, high)
            cmap, flat = "jet", raw
        if self._bar.get_cmap().name != cmap:  # set_cmap is slow: only when it changes
            self._raw.set_cmap(cmap)
            self._bar.set_cmap(cmap)
        top = max(abs(low), abs(high))
        power = math.floor(math.log10(top)) if top > 0 else 0
        power = 0 if -2 <= power <= 3 else power  # as matplotlib's offset text: labels x 10^power
        self._bar_scale.set_text(f"×1e{power}" if power else "")
        for label, fraction in zip(self._tick_labels, BAR_TICKS):
            label.set_text(f"{(low + fraction * (high - low)) / 10 ** power:.3g}")
        self._heat.set_data(normalize(upsample(flat, image.shape[-2:])).cpu().numpy())

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


def explorer(model: nn.Module, images: torch.Tensor, class_names=None, layers=None, methods=None,
             prob: str = "sigmoid", threads: int | None = 1) -> widgets.VBox:
    """An ipywidgets explorer of `model`'s maps on `images` (N, C, H, W): sliders for the image and
    the layer, menus for the class (labelled with this image's scores) and the method. Put it as the
    last expression of a cell. The arguments are Explorer's; the Explorer is `widget.explorer`."""
    return Explorer(model, images, class_names=class_names, layers=layers, methods=methods, prob=prob,
                    threads=threads).widget
