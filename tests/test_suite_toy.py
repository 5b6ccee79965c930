"""minicam.suite.toy: the fraction toy of notebooks 06 and 07, on a case small enough to do by hand."""
from fractions import Fraction

import pytest
import torch

from minicam.lrp import lrp
from minicam.suite.toy import (IMAGE, KERNELS, WEIGHTS, share_fractions, show_grid, total, toy_forward, toy_lrp,
                               toy_model)

# A 3x3 image, one kernel, one class: the conv output is 2x2, one max-pool window, GAP over one value.
IMG = [[1, 2, 0],
       [0, 1, 3],
       [2, 0, 1]]
K1 = [[[1, 0], [-1, 1]]]          # z_uv = x_uv - x_{u+1,v} + x_{u+1,v+1}
V1 = [[2]]


def test_forward_by_hand():
    fw = toy_forward(IMG, K1, V1)
    # z_00 = 1 - 0 + 1 = 2, z_01 = 2 - 1 + 3 = 4, z_10 = 0 - 2 + 0 = -2, z_11 = 1 - 0 + 1 = 2
    assert fw["conv"] == [[[2, 4], [-2, 2]]]
    assert fw["A"] == [[[2, 4], [0, 2]]]
    assert fw["pool"] == [[[4]]] and fw["winner"] == [[[(0, 1)]]]
    assert fw["gap"] == [4] and fw["y"] == [8]


def test_lrp_zero_by_hand():
    R = toy_lrp(IMG, K1, V1, [Fraction(8)], "zero")
    assert R["gap"] == [8] and R["pool"] == [[[8]]]
    assert R["A"] == [[[0, 8], [0, 0]]]                   # winner takes all: position (0, 1)
    # window (0, 1): contributions x_01 * 1 = 2, x_02 * 0 = 0, x_11 * -1 = -1, x_12 * 1 = 3, sum 4:
    # 8 shared as 4, 0, -2, 6
    assert R["img"] == [[0, 4, 0], [0, -2, 6], [0, 0, 0]]
    assert total(R["img"]) == 8                           # conservation, exactly


def test_lrp_zplus_by_hand():
    R = toy_lrp(IMG, K1, V1, [Fraction(8)], "zplus")
    # the negative contribution -1 of x_11 gets nothing: 8 shared as 2 : 3 over x_01 and x_12
    assert R["img"] == [[0, Fraction(16, 5), 0], [0, 0, Fraction(24, 5)], [0, 0, 0]]
    assert total(R["img"]) == 8


def test_the_notebooks_toy_conserves_and_matches_minicam():
    fw = toy_forward(IMAGE, KERNELS, WEIGHTS)
    assert fw["y"] == [Fraction(63, 4), Fraction(3, 2)]
    model = toy_model(KERNELS, WEIGHTS)
    x = torch.tensor(IMAGE, dtype=torch.float64)[None, None]
    torch.testing.assert_close(model(x)[0], torch.tensor([float(v) for v in fw["y"]], dtype=torch.float64))
    for rule in ("zero", "zplus"):
        R = toy_lrp(IMAGE, KERNELS, WEIGHTS, [fw["y"][0], Fraction(0)], rule)
        for key in ("gap", "pool", "A", "img"):
            assert total(R[key]) == fw["y"][0], (rule, key)
        torch.testing.assert_close(lrp(model, x, 0, rule=rule)[0, 0],
                                   torch.tensor([[float(v) for v in row] for row in R["img"]], dtype=torch.float64))


def test_share_fractions_and_helpers():
    assert share_fractions([1, 3], Fraction(8)) == [2, 6]
    assert share_fractions([0, 0], Fraction(8)) == [0, 0]     # a zero total hands nothing down
    assert show_grid([[1, Fraction(1, 2)], [0, 3]]) == "     1    1/2 |      0      3"


def test_a_tied_window_and_an_unknown_rule_are_refused():
    with pytest.raises(ValueError, match="two maxima"):
        toy_forward([[1, 1, 0], [0, 0, 0], [0, 0, 0]], [[[1, 0], [0, 0]]], [[1]])
    with pytest.raises(ValueError, match="rule"):
        toy_lrp(IMG, K1, V1, [Fraction(8)], "epsilon")
