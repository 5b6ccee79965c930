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
