import numpy as np
import pytest
import torch

from minicam import normalize, upsample


def test_normalize_min_max_per_map():
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[-2.0, 0.0], [0.0, 2.0]]])
    expected = torch.tensor([[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.5], [0.5, 1.0]]])
    torch.testing.assert_close(normalize(maps), expected)


def test_normalize_constant_and_zero_maps_are_zeros_not_nan():
    maps = torch.stack([torch.zeros(3, 3), torch.full((3, 3), 4.0)])
    out = normalize(maps)
    assert torch.equal(out, torch.zeros(2, 3, 3))


def test_upsample_bilinear_shapes_and_constant():
    maps = torch.rand(2, 4, 5)
    assert upsample(maps, 20).shape == (2, 20, 20)
    assert upsample(maps, (8, 10)).shape == (2, 8, 10)
    assert upsample(maps[0], (8, 10)).shape == (8, 10)
    torch.testing.assert_close(upsample(torch.full((1, 2, 2), 3.0), 6), torch.full((1, 6, 6), 3.0))
    # align_corners=False: doubling a 2-wide ramp [0, 1] gives [0, 0.25, 0.75, 1].
    torch.testing.assert_close(upsample(torch.tensor([[[0.0, 1.0]]]), (1, 4))[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_upsample_keeps_float64_and_accepts_integers():
    assert upsample(torch.rand(1, 2, 2, dtype=torch.float64), 4).dtype == torch.float64
    torch.testing.assert_close(upsample(torch.ones(1, 2, 2, dtype=torch.long), 4), torch.ones(1, 4, 4))


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, h, w\)"):
        upsample(torch.rand(1, 1, 2, 2), 4)
    with pytest.raises(ValueError):
        normalize(torch.rand(3))


# ---- non-finite, bool, empty and float-sized input ---------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_normalize_makes_a_non_finite_map_nan_everywhere_not_zeros(bad):
    maps = torch.stack([torch.rand(3, 3), torch.rand(3, 3)])
    maps[1, 0, 2] = bad
    out = normalize(maps)
    assert out[1].isnan().all()                              # the broken map shows as broken
    torch.testing.assert_close(out[0], normalize(maps[0]))   # its neighbour is untouched
    assert out[0].isfinite().all()


def test_normalize_bool_and_integer_maps_as_floats():
    m = torch.tensor([[True, False], [False, True]])
    assert torch.equal(normalize(m), m.float())
    torch.testing.assert_close(normalize(torch.tensor([[0, 2], [4, 8]])), torch.tensor([[0.0, 0.25], [0.5, 1.0]]))


def test_normalize_and_upsample_empty_maps():
    assert normalize(torch.zeros(0, 3, 3)).shape == (0, 3, 3)
    assert normalize(torch.zeros(2, 0, 0)).shape == (2, 0, 0)
    assert upsample(torch.zeros(0, 3, 3), 8).shape == (0, 8, 8)
    with pytest.raises(ValueError, match="^maps must have at least one pixel"):
        upsample(torch.zeros(2, 0, 3), 8)


def test_upsample_sizes_are_whole_pixels():
    maps = torch.rand(2, 3, 3)
    ref = upsample(maps, (8, 8))
    for size in (8.0, (8.0, 8), np.int64(8), (np.int32(8), torch.tensor(8)), torch.Size([8, 8])):
        assert torch.equal(upsample(maps, size), ref), size
    for size, error in ((8.5, ValueError), ((8, 7.5), ValueError), ("8", TypeError), (0, ValueError),
                        ((8, -1), ValueError), (True, TypeError), ((8, 8, 8), ValueError), (None, TypeError)):
        with pytest.raises(error, match="size"):
            upsample(maps, size)


def test_complex_maps_are_refused():
    with pytest.raises(TypeError, match="real-valued"):
        normalize(torch.rand(2, 2, dtype=torch.complex64))
    with pytest.raises(TypeError, match="real-valued"):
        upsample(torch.rand(2, 2, dtype=torch.complex64), 4)


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

def test_a_flat_map_stays_flat_through_upsampling_and_every_metric():
    """Defect 3: bilinear upsampling added rounding noise to a constant map (976 of 1,000 values), and
    normalize stretched it to {0, 0.5, 1}: the explanation map was not black, the pointing game hit."""
    from minicam import metrics
    values = torch.linspace(-3.0, 7.0, 1000)
    maps = values[:, None, None].expand(1000, 3, 5).contiguous()
    up = upsample(maps, (17, 23))
    assert torch.equal(up, values[:, None, None].expand(1000, 17, 23))
    assert torch.equal(normalize(up), torch.zeros(1000, 17, 23))
    x = torch.rand(2, 3, 17, 23)
    flat = torch.full((2, 1, 1), 0.3)                    # a 1x1 map, as at a GAP layer
    assert torch.equal(metrics.explanation_map(flat, x), torch.zeros_like(x))
    mask = torch.zeros(17, 23, dtype=torch.bool)
    mask[:9] = True
    assert not metrics.pointing_game(upsample(flat, (17, 23)), mask.expand(2, 17, 23)).any()
    assert metrics.peak(upsample(flat, (17, 23))[0]) is None
    assert metrics.loc(upsample(flat, (17, 23))[0], torch.tensor([[0, 0, 5, 5]]), 0.0) == 0.0
