"""minicam.metrics against answers worked out by hand on tiny maps, boxes and a fixed-weight model.
(The smoke run of `minicam evaluate` is in test_evaluate.py.)"""
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from minicam import metrics


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


# ---- Average Drop, Increase in Confidence, Win % ------------------------------------------------

def test_average_drop_and_increase_by_hand():
    Y, O = torch.tensor([1.0, 0.5]), torch.tensor([0.4, 0.6])
    # drops: (1.0 - 0.4) / 1.0 = 0.6 and max(0, 0.5 - 0.6) / 0.5 = 0 -> mean 0.3
    assert metrics.average_drop(Y, O) == pytest.approx(30.0)
    # only the second image gains confidence
    assert metrics.increase_in_confidence(Y, O) == pytest.approx(50.0)
    torch.testing.assert_close(metrics.confidence_drop(Y, O), torch.tensor([0.6, 0.0], dtype=torch.float64))


def test_drop_is_relative_to_the_original_score():
    # the same absolute drop of 0.1 weighs twice as much on a score of 0.2 as on 0.4
    assert metrics.average_drop(torch.tensor([0.2]), torch.tensor([0.1])) == pytest.approx(50.0)
    assert metrics.average_drop(torch.tensor([0.4]), torch.tensor([0.3])) == pytest.approx(25.0)


@pytest.mark.parametrize("Y, O, message", [
    (torch.tensor([0.0, 0.5]), torch.tensor([0.1, 0.1]), "positive probabilities"),
    (torch.tensor([-1.0]), torch.tensor([0.1]), "positive probabilities"),
    (torch.tensor([0.5]), torch.tensor([-0.1]), "positive probabilities"),
    (torch.tensor([2.5]), torch.tensor([0.1]), "not logits"),
    (torch.tensor([0.5, 0.5]), torch.tensor([0.1]), "one score per image"),
    (torch.tensor([[0.5]]), torch.tensor([[0.1]]), "1-D"),
    (torch.tensor([]), torch.tensor([]), "non-empty"),
    ([0.5], torch.tensor([0.1]), "1-D tensor"),
])
def test_drop_inputs_are_checked(Y, O, message):
    with pytest.raises(ValueError, match=message):
        metrics.average_drop(Y, O)
    with pytest.raises(ValueError, match=message):
        metrics.increase_in_confidence(Y, O)


def test_win_percent_by_hand_ties_count_half():
    a = torch.tensor([0.1, 0.2, 0.3, 0.0])
    b = torch.tensor([0.2, 0.2, 0.4, 0.0])
    # a wins images 0 and 2, ties on 1 and 3: (1 + 0.5 + 1 + 0.5) / 4
    assert metrics.win_percent(a, b) == pytest.approx(75.0)
    assert metrics.win_percent(b, a) == pytest.approx(25.0)
    assert metrics.win_percent(a, a) == pytest.approx(50.0)  # against itself: all ties


def test_win_percent_checks_inputs():
    with pytest.raises(ValueError, match="same images"):
        metrics.win_percent(torch.tensor([0.1, 0.2]), torch.tensor([0.1]))
    with pytest.raises(ValueError, match="1-D"):
        metrics.win_percent(torch.zeros(2, 2), torch.zeros(2, 2))


# ---- the explanation map and the scores on it -------------------------------------------------

def test_explanation_map_is_normalised_map_times_image():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2) + 1
    cam = torch.tensor([[[0.0, 2.0], [4.0, 0.0]],
                        [[5.0, 5.0], [5.0, 5.0]]])   # the second is constant
    E = metrics.explanation_map(cam, x)
    assert E.shape == x.shape
    # same resolution, so upsampling changes nothing; min-max gives [[0, 0.5], [1, 0]]
    torch.testing.assert_close(E[0], x[0] * torch.tensor([[0.0, 0.5], [1.0, 0.0]]))
    torch.testing.assert_close(E[1], torch.zeros(3, 2, 2))   # a constant map leaves a black image


def test_explanation_map_upsamples_to_the_image():
    x = torch.ones(1, 3, 8, 8)
    cam = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])
    E = metrics.explanation_map(cam, x)
    assert E.shape == (1, 3, 8, 8)
    assert E.min().item() == pytest.approx(0.0) and E.max().item() == pytest.approx(1.0)
    assert E[0, :, 7, 7].tolist() == pytest.approx([1.0] * 3)   # the 3 sits in the bottom-right cell
    with pytest.raises(ValueError, match="one map per image"):
        metrics.explanation_map(cam.expand(2, 2, 2), x)


def tiny_model():
    """x (N, 1, 2, 2) -> logits: class 0 = sum of the four pixels, class 1 = the bottom-right pixel."""
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]]))
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=fc))


def test_scores_on_explanations_by_hand():
    model = tiny_model().train()
    x = torch.ones(2, 1, 2, 2)
    cams = torch.tensor([[[1.0, 0.0], [0.0, 0.0]],      # keeps the top-left pixel: E sums to 1
                         [[2.0, 1.0], [1.0, 0.0]]])     # normalised [[1, .5], [.5, 0]]: E sums to 2
    Y, O = metrics.scores_on_explanations(model, x, cams, 0)
    # softmax over logits (4, 1) on x, (1, 0) and (2, 0) on E: p0 = sigmoid(l0 - l1)
    assert Y.tolist() == pytest.approx([sigmoid(3), sigmoid(3)])
    assert O.tolist() == pytest.approx([sigmoid(1), sigmoid(2)])
    Y, O = metrics.scores_on_explanations(model, x, cams, [0, 0], prob="sigmoid")
    assert Y.tolist() == pytest.approx([sigmoid(4), sigmoid(4)])
    assert O.tolist() == pytest.approx([sigmoid(1), sigmoid(2)])
    assert model.training and model.fc.weight.grad is None   # mode and gradients untouched


def test_win_percent_against_a_uniform_map_on_the_tiny_model():
    model, x = tiny_model(), torch.ones(2, 1, 2, 2)
    cams = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[2.0, 1.0], [1.0, 0.0]]])
    uniform = torch.ones(2, 2, 2)   # normalises to zeros: E is black, logits (0, 0), O = 1/2
    Y, O = metrics.scores_on_explanations(model, x, cams, 0)
    Yu, Ou = metrics.scores_on_explanations(model, x, uniform, 0)
    assert Ou.tolist() == pytest.approx([0.5, 0.5])
    assert metrics.average_drop(Yu, Ou) == pytest.approx(100 * (sigmoid(3) - 0.5) / sigmoid(3))
    drops, uniform_drops = metrics.confidence_drop(Y, O), metrics.confidence_drop(Yu, Ou)
    assert metrics.win_percent(drops, uniform_drops) == pytest.approx(100.0)
    assert metrics.win_percent(uniform_drops, drops) == pytest.approx(0.0)


def test_scores_on_explanations_checks_inputs():
    model, x, cams = tiny_model(), torch.ones(2, 1, 2, 2), torch.ones(2, 2, 2)
    with pytest.raises(ValueError, match="'softmax'.*'sigmoid'"):
        metrics.scores_on_explanations(model, x, cams, 0, prob="relu")
    with pytest.raises(ValueError, match="out of range"):
        metrics.scores_on_explanations(model, x, cams, 2)
    with pytest.raises(ValueError, match="one map per image"):
        metrics.scores_on_explanations(model, x, cams[:1], 0)


# ---- boxes: Loc(delta), box_from_map, iou ---------------------------------------------------------

LOC_MAP = torch.tensor([[0.0, 0.0, 0.0, 0.0],
                        [0.0, 4.0, 2.0, 0.0],
                        [0.0, 1.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 3.0]])   # normalised: 1, .5, .25 inside the box, .75 outside
LOC_BOX = torch.tensor([[1, 1, 3, 3]])          # rows 1-2, columns 1-2: area 4


@pytest.mark.parametrize("delta, expected", [
    (0.0, 3 / (4 + 1)),    # internal 1, .5, .25; external .75
    (0.25, 2 / (4 + 1)),   # .25 is not above 0.25
    (0.5, 1 / (4 + 1)),
    (0.75, 1 / 4),         # only the peak is left, and it is inside
])
def test_loc_by_hand(delta, expected):
    assert metrics.loc(LOC_MAP, LOC_BOX, delta) == pytest.approx(expected)


def test_loc_with_two_boxes_uses_their_union():
    boxes = torch.tensor([[1, 1, 3, 3], [2, 2, 4, 4]])   # union area 4 + 4 - 1 = 7
    assert metrics.loc(LOC_MAP, boxes, 0.0) == pytest.approx(4 / 7)   # all four pixels now inside


def test_loc_is_one_for_a_map_that_fills_the_box_and_zero_for_a_constant_map():
    filled = torch.zeros(4, 4)
    filled[1:3, 1:3] = 1
    assert metrics.loc(filled, LOC_BOX, 0.5) == pytest.approx(1.0)
    assert metrics.loc(torch.full((4, 4), 2.0), LOC_BOX, 0.0) == 0.0


def test_boxes_are_x_then_y_and_exclusive():
    mask = metrics.boxes_to_mask(torch.tensor([[1, 0, 2, 3]]), (3, 4))   # column 1, rows 0-2
    expected = torch.zeros(3, 4, dtype=torch.bool)
    expected[:, 1] = True
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("boxes, message", [
    (torch.tensor([[0, 0, 5, 2]]), "x2 <= 4"),       # past the right edge of a 4-wide map
    (torch.tensor([[2, 0, 2, 2]]), "x1 < x2"),       # empty box
    (torch.zeros(0, 4, dtype=torch.long), "empty"),
    (torch.tensor([[0.5, 0, 2, 2]]), "whole pixel"),
    (torch.tensor([[0, 0, 2]]), r"\(M, 4\)"),
])
def test_loc_checks_boxes(boxes, message):
    with pytest.raises(ValueError, match=message):
        metrics.loc(LOC_MAP, boxes, 0.0)


def test_loc_checks_map_and_delta():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        metrics.loc(LOC_MAP[None], LOC_BOX, 0.0)
    with pytest.raises(ValueError, match="delta"):
        metrics.loc(LOC_MAP, LOC_BOX, 1.0)


def two_blobs():
    """8x10 map: a small bright blob (the max) and a larger, dimmer one."""
    cam = torch.zeros(8, 10)
    cam[1:3, 1:3] = 1.0     # 4 px
    cam[4:7, 5:9] = 0.5     # 12 px, rows 4-6, columns 5-8
    return cam


def test_box_from_map_boxes_the_largest_component_not_the_brightest():
    assert metrics.box_from_map(two_blobs(), 0.15).tolist() == [5, 4, 9, 7]
    # above 60 % of the max only the bright blob is left
    assert metrics.box_from_map(two_blobs(), 0.6).tolist() == [1, 1, 3, 3]


def test_box_from_map_is_8_connected():
    cam = torch.zeros(6, 6)
    cam[0, 0] = cam[1, 1] = cam[2, 2] = 1.0   # a diagonal chain: one component of 3 only if 8-connected
    cam[4, 3:5] = 1.0                          # 2 px in a row
    assert metrics.box_from_map(cam, 0.5).tolist() == [0, 0, 3, 3]


def test_box_from_map_empty_box_for_nonpositive_maps():
    assert metrics.box_from_map(torch.zeros(5, 5)).tolist() == [0, 0, 0, 0]
    assert metrics.box_from_map(-torch.ones(5, 5)).tolist() == [0, 0, 0, 0]
    assert metrics.iou(metrics.box_from_map(torch.zeros(5, 5)), torch.tensor([0, 0, 5, 5])) == 0.0
    with pytest.raises(ValueError, match="fraction"):
        metrics.box_from_map(two_blobs(), 0.0)


def test_iou_by_hand():
    assert metrics.iou(torch.tensor([0, 0, 2, 2]), torch.tensor([1, 1, 3, 3])) == pytest.approx(1 / 7)
    assert metrics.iou(torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 2, 1])) == 0.0   # touching only
    assert metrics.iou(torch.tensor([2, 3, 6, 5]), torch.tensor([2, 3, 6, 5])) == 1.0
    assert metrics.iou(torch.zeros(4), torch.zeros(4)) == 0.0
    many = metrics.iou(torch.tensor([0, 0, 2, 2]), torch.tensor([[0, 0, 2, 2], [0, 0, 4, 4], [5, 5, 6, 6]]))
    torch.testing.assert_close(many, torch.tensor([1.0, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        metrics.iou(torch.tensor([0, 0, 2]), torch.tensor([0, 0, 2, 2]))


# ---- masks: pointing game, mask IoU, off-target share -----------------------------------------

def test_pointing_game_hits_misses_and_tolerance():
    cam = torch.zeros(5, 6)
    cam[1, 2] = 1.0
    on = torch.zeros(5, 6, dtype=torch.bool)
    on[0:3, 1:4] = True
    off = torch.zeros(5, 6, dtype=torch.bool)
    off[1, 4:] = True        # two columns to the right of the peak
    assert metrics.pointing_game(cam, on) is True
    assert metrics.pointing_game(cam, off) is False
    assert metrics.pointing_game(cam, off, tolerance=2) is True
    assert metrics.pointing_game(cam, off, tolerance=1.9) is False
    assert metrics.pointing_game(torch.zeros(5, 6), on) is False     # a constant map points nowhere
    assert metrics.pointing_game(cam, torch.zeros(5, 6, dtype=torch.bool)) is False
    hits = metrics.pointing_game(torch.stack([cam, cam]), torch.stack([on, off]))
    assert hits.tolist() == [True, False]
    with pytest.raises(ValueError, match="bool"):
        metrics.pointing_game(cam, on.float())


def test_pointing_game_ties_any_maximum_counts():
    cam = torch.zeros(3, 3)
    cam[0, 0] = cam[2, 2] = 1.0
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[2, 2] = True
    assert metrics.pointing_game(cam, mask) is True


def test_mask_iou_by_hand():
    cam = torch.tensor([[0.0, 1.0, 2.0, 4.0]])            # normalised 0, .25, .5, 1
    mask = torch.tensor([[False, False, True, False]])
    assert metrics.mask_iou(cam, mask, 0.0) == pytest.approx(1 / 3)    # {1, 2, 3} vs {2}
    assert metrics.mask_iou(cam, mask, 0.25) == pytest.approx(1 / 2)   # {2, 3} vs {2}
    assert metrics.mask_iou(torch.ones(1, 4), mask, 0.0) == 0.0
    both = metrics.mask_iou(torch.stack([cam, cam]), torch.stack([mask, mask]), 0.25)
    torch.testing.assert_close(both, torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_off_target_by_hand():
    cam = torch.tensor([[1.0, 2.0, 3.0, -4.0]])
    masks = torch.tensor([[[True, True, False, False]],     # class 0
                          [[False, True, True, False]],     # class 1, overlapping class 0 at pixel 1
                          [[False, False, False, True]]])   # class 2, where the map is negative
    # positive mass 1 + 2 + 3 = 6; for class 0 only pixel 2 (3) is another class's alone
    assert metrics.off_target(cam, masks, 0) == pytest.approx(3 / 6)
    # for class 1: pixel 0 (class 0 only) holds 1; pixel 3 is negative and adds nothing
    assert metrics.off_target(cam, masks, 1) == pytest.approx(1 / 6)
    assert metrics.off_target(torch.zeros(1, 4), masks, 0) == 0.0
    batched = metrics.off_target(torch.stack([cam, cam]), torch.stack([masks, masks]), torch.tensor([0, 1]))
    torch.testing.assert_close(batched, torch.tensor([3 / 6, 1 / 6], dtype=torch.float64))
    with pytest.raises(ValueError, match="one mask per class"):
        metrics.off_target(cam, masks[0], 0)
    with pytest.raises(ValueError, match="out of range"):
        metrics.off_target(cam, masks, 3)


# ---- no silent score: NaN and inf are errors, named --------------------------------------------

def with_bad_pixel(t, value, where=(0, 0)):
    t = t.clone()
    t[(...,) + where] = value
    return t


MASK_4x4 = torch.zeros(4, 4, dtype=torch.bool)
MASK_4x4[1:3, 1:3] = True
MAP_CALLS = {
    "loc": lambda cam: metrics.loc(cam, LOC_BOX, 0.25),
    "box_from_map": lambda cam: metrics.box_from_map(cam),
    "mask_iou": lambda cam: metrics.mask_iou(cam, MASK_4x4, 0.25),
    "pointing_game": lambda cam: metrics.pointing_game(cam, MASK_4x4),
    "off_target": lambda cam: metrics.off_target(cam, torch.stack([MASK_4x4, ~MASK_4x4]), 0),
    "explanation_map": lambda cam: metrics.explanation_map(cam[None], torch.ones(1, 3, 4, 4)),
}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", sorted(MAP_CALLS))
def test_a_non_finite_map_is_an_error_not_a_score(name, value):
    MAP_CALLS[name](LOC_MAP)  # the finite map is scored
    # before: loc, mask_iou, pointing_game, off_target scored a NaN map as a miss, box_from_map raised
    # "argmax of an empty sequence", explanation_map gave a black image
    with pytest.raises(ValueError, match=r"^cam holds 1 NaN or inf value"):
        MAP_CALLS[name](with_bad_pixel(LOC_MAP, value, (3, 0)))


def test_non_finite_scores_and_drops_are_errors():
    Y, O = torch.tensor([0.9, 0.8]), torch.tensor([0.5, 0.7])
    for f in (metrics.average_drop, metrics.increase_in_confidence, metrics.confidence_drop):
        with pytest.raises(ValueError, match="^Y holds 1 NaN"):
            f(with_bad_pixel(Y, float("nan"), (1,)), O)
        with pytest.raises(ValueError, match="^O holds 1 NaN"):
            f(Y, with_bad_pixel(O, float("nan"), (0,)))
    drops = torch.tensor([0.1, 0.2, 0.3])
    # before: a NaN drop counted as a loss for a and for b
    with pytest.raises(ValueError, match="^drops_a holds 1 NaN"):
        metrics.win_percent(with_bad_pixel(drops, float("nan"), (1,)), drops)
    with pytest.raises(ValueError, match="^drops_b holds 1 NaN"):
        metrics.win_percent(drops, with_bad_pixel(drops, float("inf"), (2,)))


def test_non_finite_image_or_model_output_is_an_error():
    model, x, cams = tiny_model(), torch.ones(2, 1, 2, 2), torch.rand(2, 2, 2)
    bad_x = with_bad_pixel(x, float("nan"), (1, 0, 1, 1))
    with pytest.raises(ValueError, match="^x holds 1 NaN"):
        metrics.target_probs(model, bad_x, 0)
    with pytest.raises(ValueError, match="^x holds 1 NaN"):
        metrics.scores_on_explanations(model, bad_x, cams, 0)
    with pytest.raises(ValueError, match="^x holds 1 NaN"):
        metrics.explanation_map(cams, bad_x)
    with pytest.raises(ValueError, match="^cams holds 1 NaN"):
        metrics.scores_on_explanations(model, x, with_bad_pixel(cams, float("nan"), (1, 0, 0)), 0)
    with pytest.raises(ValueError, match="scores holds 2 NaN or inf"):
        metrics.target_probs(model, x * 1e38, 0)   # a finite float32 image, inf logits (4e38)


def test_iou_non_finite_or_non_numeric_boxes_name_the_box():
    box = torch.tensor([0.0, 0.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="^box_a holds 1 NaN"):
        metrics.iou(with_bad_pixel(box, float("nan"), (2,)), box)   # before: IoU 0
    with pytest.raises(ValueError, match="^box_b holds 1 NaN"):
        metrics.iou(box, with_bad_pixel(box, float("inf"), (3,)))
    with pytest.raises(TypeError, match="^box_b must be"):
        metrics.iou(box, "0 0 2 2")
    assert metrics.iou([0, 0, 2, 2], np.array([1, 1, 3, 3])) == pytest.approx(1 / 7)


def test_scores_on_explanations_checks_cams_before_the_model_runs():
    calls = []
    model = tiny_model()
    model.register_forward_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match="^cams must hold one map per image"):
        metrics.scores_on_explanations(model, torch.ones(2, 1, 2, 2), torch.ones(3, 2, 2), 0)
    with pytest.raises(ValueError, match="target has 3 entries"):
        metrics.scores_on_explanations(model, torch.ones(2, 1, 2, 2), torch.ones(2, 2, 2), [0, 0, 1])
    with pytest.raises(TypeError, match="^model must be"):
        metrics.target_probs(lambda x: x, torch.ones(2, 1, 2, 2), 0)
    assert calls == []


@pytest.mark.parametrize("call, error, name", [
    (lambda: metrics.loc(LOC_MAP, LOC_BOX, "0.5"), TypeError, "delta"),
    (lambda: metrics.loc(LOC_MAP, LOC_BOX, float("nan")), ValueError, "delta"),
    (lambda: metrics.mask_iou(LOC_MAP, MASK_4x4, None), TypeError, "delta"),
    (lambda: metrics.box_from_map(LOC_MAP, "0.15"), TypeError, "fraction"),
    (lambda: metrics.box_from_map(LOC_MAP, float("nan")), ValueError, "fraction"),
    (lambda: metrics.pointing_game(LOC_MAP, MASK_4x4, float("nan")), ValueError, "tolerance"),
    (lambda: metrics.pointing_game(LOC_MAP, MASK_4x4, "2"), TypeError, "tolerance"),
])
def test_thresholds_must_be_numbers(call, error, name):
    with pytest.raises(error, match=f"^{name} "):
        call()


def test_thresholds_of_other_number_kinds():
    assert metrics.loc(LOC_MAP, LOC_BOX, np.float32(0.25)) == metrics.loc(LOC_MAP, LOC_BOX, 0.25)
    assert metrics.loc(LOC_MAP, LOC_BOX, torch.tensor(0.25)) == metrics.loc(LOC_MAP, LOC_BOX, 0.25)
    assert metrics.pointing_game(LOC_MAP, MASK_4x4, np.int64(0)) == metrics.pointing_game(LOC_MAP, MASK_4x4)


def test_numpy_integers_as_class_indices():
    cam = torch.tensor([[1.0, 2.0, 3.0, -4.0]])
    masks = torch.tensor([[[True, True, False, False]], [[False, True, True, False]]])
    assert metrics.off_target(cam, masks, np.int64(1)) == metrics.off_target(cam, masks, 1)
    cams, batch = torch.stack([cam, cam]), torch.stack([masks, masks])
    want = metrics.off_target(cams, batch, torch.tensor([0, 1]))
    torch.testing.assert_close(metrics.off_target(cams, batch, np.array([0, 1])), want)
    torch.testing.assert_close(metrics.off_target(cams, batch, [np.int64(0), np.int32(1)]), want)
    model, x = tiny_model(), torch.ones(2, 1, 2, 2)
    torch.testing.assert_close(metrics.target_probs(model, x, np.int64(1)), metrics.target_probs(model, x, 1))
    with pytest.raises(ValueError, match="out of range"):
        metrics.target_probs(model, x, np.int64(2))
    with pytest.raises(ValueError, match="target -1 is out of range: the model has 2 classes"):
        metrics.target_probs(model, x, -1)


def test_boxes_to_mask_sizes_are_whole_pixels():
    boxes = torch.tensor([[1, 0, 2, 3]])
    ref = metrics.boxes_to_mask(boxes, (3, 4))
    for size in ((3.0, 4.0), (np.int64(3), 4), torch.Size([3, 4])):
        assert torch.equal(metrics.boxes_to_mask(boxes, size), ref)
    assert torch.equal(metrics.boxes_to_mask(boxes, 4.0), metrics.boxes_to_mask(boxes, 4))
    for size, error in ((4.5, ValueError), ((3, 4.5), ValueError), ("4", TypeError), ((3, 0), ValueError)):
        with pytest.raises(error, match="size"):
            metrics.boxes_to_mask(boxes, size)


# --- paired bootstrap: the interval behind every "A beats B" -------------------------------------

def test_bootstrap_of_a_constant_difference_is_that_difference():
    a = torch.tensor([3.0, 1.0, 2.0, 5.0])
    for shift, verdict in ((0.5, "a"), (-0.25, "b"), (0.0, "tie")):
        result = metrics.paired_bootstrap(a + shift, a, images=[0, 0, 1, 2])
        assert (result.diff, result.low, result.high) == pytest.approx((shift, shift, shift))
        assert (result.pairs, result.images, result.verdict) == (4, 3, verdict)


def test_bootstrap_draws_the_pairs_of_one_image_together():
    # one image: every resample holds all its pairs, so the interval has no width
    d = torch.tensor([1.0, -3.0, 0.5])
    one = metrics.paired_bootstrap(d, torch.zeros(3), images=[7, 7, 7])
    assert one.low == one.high == pytest.approx(d.mean().item()) and one.images == 1
    # the same numbers as three images: the interval is wide and contains 0
    three = metrics.paired_bootstrap(d, torch.zeros(3))
    assert three.low < 0 < three.high and three.verdict == "tie"


def test_bootstrap_matches_a_loop_over_the_same_draws():
    torch.manual_seed(0)
    a, b = torch.rand(30), torch.rand(30)
    images = torch.arange(30) // 3                      # ten images of three pairs each
    result = metrics.paired_bootstrap(a, b, images=images, resamples=500, seed=4)
    draw = torch.randint(10, (500, 10), generator=torch.Generator().manual_seed(4))
    d = (a - b).double().numpy()
    means = [np.concatenate([d[images.numpy() == i] for i in row.tolist()]).mean() for row in draw]
    assert (result.low, result.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), rel=1e-12)


def test_bootstrap_interval_has_the_textbook_width():
    # iid differences of sd 1: the 95 % interval of the mean is about +-1.96 / sqrt(n)
    d = torch.randn(400, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    result = metrics.paired_bootstrap(d, torch.zeros(400))
    half = 1.96 * d.std().item() / 400 ** 0.5
    assert (result.high - result.low) / 2 == pytest.approx(half, rel=0.15)
    assert result.verdict == "a" and "400 pairs, 400 images): a" in str(result)


# ---- deletion and insertion (RISE) ---------------------------------------------------------------

def gap_linear():
    """y = (2 m, 0.5 - m) with m the image's mean (one channel): a linear model behind GAP, float64,
    so every point of a curve is a number worked out by hand. Left in training mode."""
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2)).double()
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[2.0], [-1.0]]))
        model[2].bias.copy_(torch.tensor([0.0, 0.5]))
    return model.train()


X22 = torch.tensor([[[[0.8, 0.2], [0.4, 0.6]]]], dtype=torch.float64)
MAP22 = torch.tensor([[[3.0, 1.0], [2.0, 0.0]]])            # order: 0.8, then 0.4, then 0.2, then 0.6


def test_deletion_curve_by_hand():
    # removing 0.8, 0.4, 0.2, 0.6 in turn (baseline 0) leaves sums 2.0, 1.2, 0.8, 0.6, 0 -> means / 4
    means = [2.0 / 4, 1.2 / 4, 0.8 / 4, 0.6 / 4, 0.0]
    model = gap_linear()
    fractions, scores = metrics.deletion_curve(model, X22, MAP22, 0, step=1, prob="sigmoid")
    assert fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert scores.shape == (1, 5) and scores.dtype == torch.float64
    assert scores[0].tolist() == pytest.approx([sigmoid(2 * m) for m in means], abs=1e-15)
    softmax = [1 / (1 + math.exp((0.5 - m) - 2 * m)) for m in means]
    assert metrics.deletion_curve(model, X22, MAP22, 0, step=1)[1][0].tolist() == pytest.approx(softmax, abs=1e-15)
    assert model.training   # the mode is given back


def test_insertion_curve_by_hand_and_the_area():
    # from a constant 0.1 image, put back 0.8, 0.4, 0.2, 0.6 in turn
    means = [0.4 / 4, 1.1 / 4, 1.4 / 4, 1.5 / 4, 2.0 / 4]
    fractions, scores = metrics.insertion_curve(gap_linear(), X22, MAP22, 0, step=1, baseline=0.1, prob="sigmoid")
    expected = [sigmoid(2 * m) for m in means]
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-15)
    trapezoid = sum(0.25 * (a + b) / 2 for a, b in zip(expected, expected[1:]))
    assert metrics.curve_auc(fractions, scores).tolist() == pytest.approx([trapezoid], abs=1e-15)
    assert metrics.curve_auc(fractions, scores[0]) == pytest.approx(trapezoid, abs=1e-15)


def test_a_last_step_shorter_than_the_others_is_weighted_by_its_width():
    x = torch.arange(9, dtype=torch.float64).view(1, 1, 3, 3) / 8      # 0, 1/8, ..., 1
    cam = torch.arange(9.0).view(1, 3, 3)                                # highest value last: pixels 8, 7, ... first
    fractions, scores = metrics.deletion_curve(gap_linear(), x, cam, 0, step=2, prob="sigmoid")
    assert fractions.tolist() == pytest.approx([0, 2 / 9, 4 / 9, 6 / 9, 8 / 9, 1], abs=1e-15)
    removed = [0, 2, 4, 6, 8, 9]
    kept_sums = [sum(range(9 - k)) / 8 for k in removed]                # the k largest values are gone
    expected = [sigmoid(2 * s / 9) for s in kept_sums]
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-15)
    f = [k / 9 for k in removed]
    area = sum((f[i + 1] - f[i]) * (expected[i] + expected[i + 1]) / 2 for i in range(5))
    assert metrics.curve_auc(fractions, scores).item() == pytest.approx(area, abs=1e-15)


def test_equal_map_values_go_in_a_seeded_random_order_and_a_small_map_is_upsampled():
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    flat = torch.zeros(1, 2, 2)
    # all equal: the pixels go in the order of randperm(4) drawn with the seed; the bright one (index 0)
    # leaves the image at the step where the permutation puts it
    for seed in range(6):
        place = torch.randperm(4, generator=torch.Generator().manual_seed(seed)).tolist().index(0)
        scores = metrics.deletion_curve(gap_linear(), x, flat, 0, step=1, prob="sigmoid", seed=seed)[1][0]
        expected = [sigmoid(0.5) if k <= place else 0.5 for k in range(5)]
        assert scores.tolist() == pytest.approx(expected, abs=1e-15), seed
    same = [metrics.deletion_curve(gap_linear(), x, flat, 0, step=1, seed=3)[1] for _ in range(2)]
    assert torch.equal(*same)
    # a 1x2 map, upsampled bilinearly to 2x2, ranks the right column first: the bright pixel goes last
    wide = torch.tensor([[[0.0, 1.0]]])
    scores = metrics.deletion_curve(gap_linear(), x, wide, 0, step=2, prob="sigmoid")[1][0]
    assert scores.tolist() == pytest.approx([sigmoid(0.5), sigmoid(0.5), 0.5], abs=1e-15)
    # distinct values: the seed changes nothing
    torch.testing.assert_close(metrics.deletion_curve(gap_linear(), X22, MAP22, 0, step=1, seed=5),
                               metrics.deletion_curve(gap_linear(), X22, MAP22, 0, step=1, seed=0))


def test_curves_are_batched_image_by_image():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    x, cam, target = torch.rand(3, 3, 6, 6), torch.rand(3, 3, 3), torch.tensor([0, 2, 1])
    for curve in (metrics.deletion_curve, metrics.insertion_curve):
        fractions, scores = curve(model, x, cam, target, step=5, batch_size=4)
        for i in range(3):
            one = curve(model, x[i:i + 1], cam[i:i + 1], int(target[i]), step=5)[1]
            torch.testing.assert_close(scores[i:i + 1], one)
        assert fractions[0] == 0 and fractions[-1] == 1 and scores.shape == (3, len(fractions))


def test_the_baselines_are_the_start_and_the_end():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    x, cam = torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4)
    blurred = metrics.gaussian_blur(x, 2.0)
    probs = lambda images: metrics.target_probs(model, images, 1)
    scores = metrics.insertion_curve(model, x, cam, 1, step=16, sigma=2.0)[1]
    torch.testing.assert_close(scores[:, 0], probs(blurred))        # insertion starts from the blurred image
    torch.testing.assert_close(scores[:, -1], probs(x))             # ... and ends at the image
    scores = metrics.deletion_curve(model, x, cam, 1, step=16, baseline=0.25)[1]
    torch.testing.assert_close(scores[:, 0], probs(x))
    torch.testing.assert_close(scores[:, -1], probs(torch.full_like(x, 0.25)))
    scores = metrics.deletion_curve(model, x, cam, 1, step=16, baseline="blur", sigma=2.0)[1]
    torch.testing.assert_close(scores[:, -1], probs(blurred))


def test_gaussian_blur_is_scipys_with_the_edge_repeated():
    from scipy import ndimage
    x = torch.rand(2, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for sigma in (0.5, 1.3, 5.0):   # 5.0: a kernel wider than the image
        ours = metrics.gaussian_blur(x, sigma).numpy()
        theirs = np.stack([[ndimage.gaussian_filter(c, sigma, mode="nearest", truncate=3.0) for c in image]
                           for image in x.numpy()])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    flat = torch.full((1, 3, 5, 5), 0.3, dtype=torch.float64)
    torch.testing.assert_close(metrics.gaussian_blur(flat, 2.0), flat)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(step=0), ValueError, "step"),
    (dict(step=1.5), ValueError, "step"),
    (dict(baseline="noise"), ValueError, "baseline"),
    (dict(baseline=float("nan")), ValueError, "baseline"),
    (dict(sigma=0.0), ValueError, "sigma"),
    (dict(sigma=float("inf")), ValueError, "sigma"),
    (dict(prob="logit"), ValueError, "prob"),
    (dict(cam=torch.rand(2, 2, 2)), ValueError, "cam"),
    (dict(cam=torch.rand(1, 3, 2, 2)), ValueError, "cam"),
    (dict(cam=torch.full((1, 2, 2), float("nan"))), ValueError, "cam"),
    (dict(target=2), ValueError, "target"),
    (dict(x=X22[:0]), ValueError, "x"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(seed=-1), ValueError, "seed"),
])
def test_curves_check_their_arguments(kwargs, error, name):
    args = dict(model=gap_linear(), x=X22, cam=MAP22, target=0, step=1) | kwargs
    for curve in (metrics.deletion_curve, metrics.insertion_curve):
        with pytest.raises(error, match=f"^{name} "):
            curve(**args)


@pytest.mark.parametrize("fractions, scores, name", [
    (torch.tensor([0.0, 0.5]), torch.rand(2), "fractions"),
    (torch.tensor([0.0, 0.7, 0.5, 1.0]), torch.rand(4), "fractions"),
    (torch.tensor([0.0]), torch.rand(1), "fractions"),
    (torch.tensor([0.0, 1.0]), torch.rand(3), "scores"),
    (torch.tensor([0.0, 1.0]), torch.tensor([0.5, float("nan")]), "scores"),
])
def test_curve_auc_checks_its_arguments(fractions, scores, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        metrics.curve_auc(fractions, scores)


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

def test_an_all_zero_map_has_no_peak():
    """Defect 7: all-zero maps were reported with a peak at (0, 0)."""
    assert metrics.peak(torch.zeros(4, 5)) is None and metrics.peak(torch.full((4, 5), 2.5)) is None
    cam = torch.zeros(4, 5)
    cam[2, 3] = 1.0
    assert metrics.peak(cam) == (2, 3)
    cam[1, 4] = 1.0
    assert metrics.peak(cam) == (1, 4)   # ties: the first in row-major order
