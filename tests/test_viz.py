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
