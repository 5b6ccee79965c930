"""The explorer's picture on its own: tensors and words in, PNG bytes out."""
import io

import PIL.Image
import pytest
import torch
from torch.testing import assert_close

from minicam.explorer_figure import BAR_TICKS, ExplorerFigure, bar_labels


def images(n=3, size=16):
    torch.manual_seed(1)
    return torch.rand(n, 3, size, size)


def test_render_gives_a_png_of_the_figure_size():
    figure = ExplorerFigure(images())
    png = figure.render(0, torch.rand(4, 4))
    assert png.startswith(b"\x89PNG")
    assert PIL.Image.open(io.BytesIO(png)).size == figure.canvas.get_width_height()


def test_the_same_input_gives_the_same_picture_whatever_came_before():
    figure = ExplorerFigure(images())
    raw = torch.rand(4, 4)
    first = figure.render(1, raw)
    figure.render(2, torch.rand(3, 16, 16) - 0.5)
    figure.render(0, None, "not defined here")
    assert figure.render(1, raw) == first
    assert figure.render(1, raw * -1) != first
    assert figure.render(2, raw) != first


def test_a_message_replaces_the_map():
    figure = ExplorerFigure(images())
    with_message = figure.render(0, None, "CAM is only defined at relu6")
    assert with_message != figure.render(0, None, "another message")
    assert with_message != figure.render(0, torch.rand(4, 4))


def test_bar_labels_by_hand():
    assert bar_labels(0.0, 1.0) == ("", ["0", "0.25", "0.5", "0.75", "1"])
    assert bar_labels(-2e-5, 2e-5) == ("×1e-5", ["-2", "-1", "0", "1", "2"])
    assert bar_labels(0.0, 0.0) == ("", ["0"] * 5)
    assert bar_labels(0, 5000.0)[0] == "" and bar_labels(0, 50000.0)[0] == "×1e4"


@pytest.mark.parametrize("raw", [torch.rand(4, 4) * 3 - 1, torch.rand(3, 16, 16) * 1e-5 - 5e-6, torch.ones(4, 4)])
def test_colour_bar_labels_span_the_raw_map(raw):
    figure = ExplorerFigure(images())
    figure.render(0, raw)
    scale = figure.bar_scale.get_text()
    factor = 10 ** int(scale[3:]) if scale else 1
    labels = [float(label.get_text()) * factor for label in figure.tick_labels]
    assert len(labels) == len(BAR_TICKS)
    low, high = (-raw.abs().max(), raw.abs().max()) if raw.dim() == 3 else (raw.min(), raw.max())
    high = high if high > low else low + 1  # a constant map still gets a scale
    assert_close(torch.tensor([labels[0], labels[-1]]), torch.stack([low, high]).float(), rtol=5e-3, atol=0)
