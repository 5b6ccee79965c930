"""The explorer's picture: tensors and words in, PNG bytes out. Nothing here computes a map.

Three panels -- the image, the map upsampled and normalised on the image (`minicam.viz.overlay`), the
raw map with its colour bar (`minicam.viz.show_map`) -- drawn once; a render pastes a saved
background back and draws only the artists that change (blitting), then encodes the PNG. The raw
map's colour bar is an image of the colour map with five labels of our own: matplotlib's tick
machinery would cost most of a redraw.
"""
from __future__ import annotations

import io
import math
import textwrap
from collections import OrderedDict

import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..checks import check_images, check_number, whole_number
from ..maps import normalize, upsample
from ..viz import check_map, overlay, show_map, to_rgb

__all__ = ["ExplorerFigure", "bar_labels"]

BAR_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where the raw map's colour bar is labelled, as fractions of it
IMAGE_BACKGROUNDS = 16  # backgrounds with an image drawn in, kept for reuse (~0.7 MB each)
BOXES = {False: {"facecolor": "#fff4d6", "edgecolor": "#c90"},    # a notice: the method does not apply
         True: {"facecolor": "#fde0e0", "edgecolor": "#b00020"}}  # an error


def bar_labels(low: float, high: float) -> tuple[str, list[str]]:
    """The colour bar's scale ("×1e-5", or "" as matplotlib's offset text leaves it out for powers
    -2..3) and its labels at BAR_TICKS of [low, high], in units of that scale."""
    low, high = (check_number(v, name, "a finite number (an end of the colour bar)") for v, name in
                 ((low, "low"), (high, "high")))
    if high < low:
        raise ValueError(f"high must be >= low (the colour bar runs from low to high), got low={low}, high={high}")
    top = max(abs(low), abs(high))
    power = math.floor(math.log10(top)) if top > 0 else 0
    power = 0 if -2 <= power <= 3 else power
    return (f"×1e{power}" if power else ""), [f"{(low + f * (high - low)) / 10 ** power:.3g}" for f in BAR_TICKS]


class ExplorerFigure:
    """The explorer's figure for images (N, 1 or 3, H, W) in [0, 1]; `render` gives the PNG bytes."""

    def __init__(self, images: torch.Tensor):
        if len(check_images(images, "images")) == 0 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be a tensor (N >= 1, 1 or 3, H, W) in [0, 1], got {tuple(images.shape)}")
        self.images = images
        self.figure = Figure(figsize=(9.2, 3.0), dpi=80)
        self.canvas = FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.01, right=0.88, bottom=0.03, top=0.90, wspace=0.25)
        ax_image, ax_overlay, ax_raw = self.figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.15, 1.15]})
        self._draw_panels(ax_image, ax_overlay, ax_raw)
        self._save_backgrounds([ax_overlay.title, self._heat.colorbar.ax, ax_raw.title, self._bar.axes])
        self._image_backgrounds: OrderedDict = OrderedDict()  # (index, with map) -> background with the image

    def _draw_panels(self, ax_image, ax_overlay, ax_raw):
        image = self.images[0]
        blank = torch.zeros(image.shape[-2:])
        self._image = ax_image.imshow(to_rgb(image))
        ax_image.axis("off")
        self._image_title = ax_image.set_title(" ")
        self._heat = overlay(image, blank, ax=ax_overlay, title="map on the image (normalised)")
        self._overlay_base = ax_overlay.images[0]
        self._raw = show_map(blank, ax=ax_raw, title="raw map", colorbar=False)
        self._draw_bar(ax_raw.inset_axes([1.05, 0.0, 0.07, 1.0]))
        self._message = self.figure.text(0.62, 0.5, "", ha="center", va="center", fontsize=11, bbox=BOXES[False])

    def _draw_bar(self, bar_axes):
        self._bar = bar_axes.imshow(torch.linspace(0, 1, 256)[:, None].numpy(), cmap="jet", aspect="auto",
                                    origin="lower", extent=(0, 1, 0, 1))
        bar_axes.set_xticks([])
        bar_axes.set_yticks([])
        self.tick_labels = []
        for fraction in BAR_TICKS:
            bar_axes.plot([1.0, 1.25], [fraction, fraction], color="black", lw=0.8, clip_on=False,
                          transform=bar_axes.transAxes)
            self.tick_labels.append(bar_axes.text(1.5, fraction, "", va="center", fontsize=9,
                                                  transform=bar_axes.transAxes))
        self.bar_scale = bar_axes.text(0.0, 1.03, "", va="bottom", fontsize=9, transform=bar_axes.transAxes)

    def _save_backgrounds(self, map_only):
        """The picture without the artists that change, with and without the map panels' frames."""
        self._per_image = [self._image_title, self._image, self._overlay_base]
        self._map_artists = [self._heat, self._raw, self._bar, self.bar_scale] + self.tick_labels
        for artist in self._per_image + self._map_artists + [self._message]:
            artist.set_animated(True)
        self.canvas.draw()
        self._background = {True: self.canvas.copy_from_bbox(self.figure.bbox)}
        # Without a map, the map panels are just the image: a background without their titles and bars.
        for artist in map_only:
            artist.set_visible(False)
        self.canvas.draw()
        self._background[False] = self.canvas.copy_from_bbox(self.figure.bbox)

    def render(self, index: int, raw: torch.Tensor | None, message: str | None = None, error: bool = False) -> bytes:
        """PNG bytes of image `index` with the raw map (h, w), or (C, H, W) for input gradients, or,
        where raw is None, with the message in place of the map (in an error's colours if error)."""
        index = self._check_render(index, raw, message)
        self.canvas.restore_region(self._image_background(index, raw is not None))
        if raw is None:
            self._message.set_text(textwrap.fill(message, 60))
            self._message.get_bbox_patch().set(**BOXES[bool(error)])
            self.figure.draw_artist(self._message)
        else:
            self._set_map(raw, self.images[index])
            for artist in self._map_artists:
                self.figure.draw_artist(artist)
        width, height = self.canvas.get_width_height()
        buffer = io.BytesIO()
        PIL.Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1) \
            .convert("RGB").save(buffer, format="png", compress_level=1)  # level 1: fast, and still small
        return buffer.getvalue()

    def _check_render(self, index, raw, message) -> int:
        """render's arguments checked before anything is drawn; returns index as an int."""
        index = whole_number(index, "index", 0, floats=False, want=f"an image index in 0..{len(self.images) - 1}")
        if index >= len(self.images):
            raise IndexError(f"index must be an image index in 0..{len(self.images) - 1}, got {index}")
        if raw is None:
            if not isinstance(message, str) or not message:
                raise ValueError(f"message must say why there is no map when raw is None, got {message!r}")
        else:
            check_map(raw, "raw", dims=(2, 3), want="(h, w), or (C, H, W) for input gradients")
        return index

    def _image_background(self, index: int, with_map: bool):
        """The background with image `index` drawn in, made once per image (the image changes least)."""
        key = (index, with_map)
        if key not in self._image_backgrounds:
            self.canvas.restore_region(self._background[with_map])
            self._image_title.set_text(f"image {index}")
            for artist in (self._image, self._overlay_base):
                artist.set_data(to_rgb(self.images[index]))
            for artist in self._per_image:
                self.figure.draw_artist(artist)
            self._image_backgrounds[key] = self.canvas.copy_from_bbox(self.figure.bbox)
            if len(self._image_backgrounds) > IMAGE_BACKGROUNDS:
                self._image_backgrounds.popitem(last=False)
        self._image_backgrounds.move_to_end(key)
        return self._image_backgrounds[key]

    def _set_map(self, raw: torch.Tensor, image: torch.Tensor):
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
        scale, labels = bar_labels(low, high)
        self.bar_scale.set_text(scale)
        for artist, label in zip(self.tick_labels, labels):
            artist.set_text(label)
        self._heat.set_data(normalize(upsample(flat, image.shape[-2:])).cpu().numpy())
