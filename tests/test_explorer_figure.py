"""The explorer's picture on its own: tensors and words in, PNG bytes out."""
import io

import PIL.Image
import pytest
import torch
from torch.testing import assert_close

from minicam.suite.explorer_figure import BAR_TICKS, ExplorerFigure, bar_labels


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


def test_the_figure_draws_the_raw_map_it_is_handed():
    """What the explorer's every-position tests rely on: the raw panel holds the map given, and the
    overlay its upsampled, normalised version (for (C, H, W): max over channels of |.|)."""
    from minicam.maps import normalize, upsample
    figure = ExplorerFigure(images())
    raw = torch.rand(4, 4) * 3 - 1
    figure.render(1, raw)
    assert torch.equal(torch.as_tensor(figure._raw.get_array().data), raw)
    assert_close(torch.as_tensor(figure._heat.get_array().data), normalize(upsample(raw, (16, 16))))
    gradient = torch.rand(3, 16, 16) - 0.5
    figure.render(2, gradient)
    assert_close(torch.as_tensor(figure._heat.get_array().data), normalize(gradient.abs().amax(dim=0)))


def test_an_error_is_drawn_in_other_colours_than_a_notice():
    figure = ExplorerFigure(images())
    notice = figure.render(0, None, "CAM is only defined at relu6")
    assert figure.render(0, None, "CAM is only defined at relu6", error=True) != notice
    assert figure.render(0, None, "CAM is only defined at relu6") == notice


@pytest.mark.parametrize("index, raw, message, error, match", [
    (3, torch.rand(4, 4), None, IndexError, r"index must be an image index in 0\.\.2"),
    (0, torch.full((4, 4), float("nan")), None, ValueError, "raw holds .* NaN or inf"),
    (0, torch.rand(1, 4, 4, 4), None, ValueError, r"raw must be a real torch.Tensor \(h, w\)"),
    (0, None, "", ValueError, "message must say why there is no map"),
])
def test_render_refuses_what_it_cannot_draw_truthfully(index, raw, message, error, match):
    """Rule (a): a NaN map would be drawn as a blank, an out-of-range index as another image."""
    figure = ExplorerFigure(images())
    before = figure.render(1, torch.ones(4, 4))
    with pytest.raises(error, match=match):
        figure.render(index, raw, message)
    assert figure.render(1, torch.ones(4, 4)) == before


def test_bar_labels_refuse_non_finite_or_reversed_ends():
    with pytest.raises(ValueError, match="low must be a finite number"):
        bar_labels(float("nan"), 1.0)
    with pytest.raises(ValueError, match="high must be >= low"):
        bar_labels(1.0, 0.0)
    with pytest.raises(ValueError, match=r"images must be a tensor \(N >= 1, 1 or 3, H, W\)"):
        ExplorerFigure(torch.rand(0, 3, 8, 8))
