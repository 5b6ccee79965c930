"""Plotting at the edge: what is drawn is the tensor given, in the right layout."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minicam.maps import normalize, upsample  # noqa: E402
from minicam.viz import overlay, show_map, to_rgb  # noqa: E402


def test_to_rgb_is_channels_last_clamped_and_grey_becomes_rgb():
    image = torch.tensor([[[0.5, 2.0]], [[-1.0, 0.25]], [[1.0, 0.0]]])  # (3, 1, 2)
    assert np.array_equal(to_rgb(image), np.array([[[0.5, 0.0, 1.0], [1.0, 0.25, 0.0]]], dtype=np.float32))
    grey = to_rgb(torch.rand(1, 2, 3))
    assert grey.shape == (2, 3, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        to_rgb(torch.rand(2, 3))


def test_show_map_draws_the_raw_map_with_a_colour_bar():
    fig, ax = plt.subplots()
    raw = torch.rand(4, 5)
    im = show_map(raw, ax=ax, title="raw")
    assert np.array_equal(im.get_array(), raw.numpy()) and ax.get_title() == "raw" and not ax.axison
    assert len(fig.axes) == 2  # the colour bar's axes
    fig2, ax2 = plt.subplots()
    show_map(raw, ax=ax2, colorbar=False)
    assert len(fig2.axes) == 1
    plt.close("all")


def test_overlay_draws_the_image_and_the_normalised_upsampled_map():
    fig, ax = plt.subplots()
    image, raw = torch.rand(3, 8, 8), torch.rand(2, 2)
    im = overlay(image, raw, ax=ax, alpha=0.3)
    base, heat = ax.images
    assert np.array_equal(base.get_array(), to_rgb(image))
    assert np.allclose(heat.get_array(), normalize(upsample(raw, (8, 8))).numpy()) and heat is im
    assert im.get_alpha() == 0.3 and im.get_clim() == (0, 1)
    plt.close("all")


@pytest.mark.parametrize("call, error, match", [
    (lambda ax: show_map(torch.full((4, 4), float("nan")), ax=ax), ValueError, "raw holds .* NaN or inf"),
    (lambda ax: show_map(torch.rand(2, 4, 4), ax=ax), ValueError, r"raw must be a real torch.Tensor \(h, w\)"),
    (lambda ax: show_map([[0.0, 1.0]], ax=ax), TypeError, "raw must be a real torch.Tensor"),
    (lambda ax: overlay(torch.rand(3, 8, 8), torch.tensor([[0.0, float("inf")]]), ax=ax), ValueError, "raw holds 1 NaN or inf"),
    (lambda ax: overlay(torch.rand(2, 8, 8), torch.rand(2, 2), ax=ax), ValueError, "C = 1 or 3"),
    (lambda ax: overlay(torch.rand(3, 8, 8), torch.rand(2, 2), ax=ax, alpha=1.5), ValueError, "alpha must be"),
    (lambda ax: to_rgb(torch.full((3, 2, 2), float("nan"))), ValueError, "image holds .* NaN or inf"),
])
def test_a_map_that_would_draw_blank_or_wrong_is_an_error_and_nothing_is_drawn(call, error, match):
    """Rule (a): NaN or inf would be drawn as a blank (or make the normalised overlay all NaN)."""
    fig, ax = plt.subplots()
    with pytest.raises(error, match=match):
        call(ax)
    assert len(ax.images) == 0 and len(fig.axes) == 1
    plt.close("all")
