"""The argument checks: each wrong argument is named with what would be right; `preserved` restores
the model whatever happens; NotApplicable is the one "does not apply here" error."""
import numpy as np
import pytest
import torch
from torch import nn

from minicam.checks import (NotApplicable, Unsupported, check_feature_maps, check_finite, check_images, check_targets,
                            preserved, resolve_layer)
from minicam.hooks import capture


def test_targets_become_one_class_per_image():
    assert check_targets(2, 3, 4).tolist() == [2, 2, 2]
    assert check_targets([0, 3, 1], 3, 4).tolist() == [0, 3, 1]
    assert check_targets(torch.tensor(1), 2, 4).tolist() == [1, 1]
    assert check_targets(torch.tensor([3]), 2, 4).tolist() == [3, 3]
    assert check_targets(torch.tensor([1, 0], dtype=torch.int32), 2, 4).dtype == torch.long


@pytest.mark.parametrize("target, error, match", [
    (True, TypeError, "integer class indices.*got bool"),
    (torch.tensor([0.0, 1.0]), TypeError, "integer class indices"),
    (torch.tensor([[0, 1]]), ValueError, "1-D"),
    ([0, 1.0], TypeError, "a list of ints"),
    ("cat", TypeError, "an int, a list of ints .* or an integer tensor"),
    (2 ** 63, ValueError, "target 9223372036854775808 is out of range"),
    ([0, 2 ** 64], ValueError, "target 18446744073709551616 is out of range"),
    (torch.tensor([1 + 0j, 2 + 0j]), TypeError, "integer class indices.*torch.complex64"),
    (1 + 0j, TypeError, "integer class indices"),
    ([0, 1, 2], ValueError, "3 entries but x holds 2 images"),
    ([0, 4], ValueError, r"target 4 is out of range: .* 0\.\.3"),
    (-1, ValueError, "out of range"),
])
def test_bad_targets_say_what_would_be_right(target, error, match):
    with pytest.raises(error, match=match):
        check_targets(target, 2, 4)


def test_images_and_scores():
    x = torch.rand(1, 3, 4, 4)
    assert check_images(x) is x
    with pytest.raises(ValueError, match=r"4-D .*unsqueeze"):
        check_images(x[0])
    with pytest.raises(TypeError, match="floating"):
        check_images(x.long())
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_images(x.numpy())
    with pytest.raises(ValueError, match=r"scores must be a real torch.Tensor \(N, classes\), got shape \(2, 3, 4\)"):
        check_finite(torch.rand(2, 3, 4), "scores", dims=(2,), shape="(N, classes)")


def test_a_layer_must_run_exactly_once():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 2, 1), relu, nn.Conv2d(2, 2, 1), relu, nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(ValueError, match=r"layer '1' ran 2 times in one forward pass.*\(e\.g\. its parent block\)"):
        capture(model, torch.rand(1, 3, 4, 4), 0, "1")


def test_resolve_layer_by_name_or_module():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Sequential(nn.ReLU()))
    assert resolve_layer(model, "1.0") == ("1.0", model[1][0])
    assert resolve_layer(model, model[0]) == ("0", model[0])
    with pytest.raises(ValueError, match=r"layer '1\.1' not found; layers are \(closest first\): '1\.0'"):
        resolve_layer(model, "1.1")
    with pytest.raises(ValueError, match="not part of the model"):
        resolve_layer(model, nn.ReLU())
    with pytest.raises(TypeError, match="named_modules"):
        resolve_layer(model, 0)


def test_preserved_restores_mode_flags_and_grads_also_on_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    model[0].bias.requires_grad_(False)
    grad = torch.ones(2, 2)
    model[0].weight.grad = grad
    with pytest.raises(RuntimeError):
        with preserved(model):
            assert not model.training and not model[1].training
            model[0].weight.grad = None
            model[0].bias.requires_grad_(True)
            raise RuntimeError("inside")
    assert model.training and model[1].training
    assert model[0].weight.grad is grad and not model[0].bias.requires_grad


def test_not_applicable_is_a_value_error_and_unsupported_both():
    assert issubclass(NotApplicable, ValueError)
    assert issubclass(Unsupported, NotApplicable) and issubclass(Unsupported, NotImplementedError)


# ---- issue 12 -------------------------------------------------------------------------------------

def test_numpy_integers_are_targets_and_numpy_floats_or_bools_are_not():
    assert check_targets(np.int64(2), 3, 4).tolist() == [2, 2, 2]
    assert check_targets(np.array([1, 3]), 2, 4).tolist() == [1, 3]
    assert check_targets(np.array(1, dtype=np.uint8), 2, 4).tolist() == [1, 1]
    assert check_targets([np.int32(0), 3], 2, 4).tolist() == [0, 3]
    for bad in (np.array([0.0, 1.0]), np.array([True, False]), np.bool_(True), [np.float64(1.0), 0]):
        with pytest.raises(TypeError, match="target"):
            check_targets(bad, 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        check_targets(np.array([0, 4]), 2, 4)


def test_a_non_finite_image_is_refused_and_an_inference_tensor_becomes_a_normal_copy():
    x = torch.rand(1, 3, 2, 2)
    for value, count in ((float("nan"), 1), (float("inf"), 2)):
        bad = x.clone()
        bad.view(-1)[:count] = value
        with pytest.raises(ValueError, match=rf"^x holds {count} NaN or inf value\(s\) of 12; it must be finite"):
            check_images(bad)
    with torch.inference_mode():
        made_inside = torch.rand(1, 3, 2, 2)
    assert check_images(made_inside) is made_inside   # checked, not copied: the methods leave inference mode
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten(), nn.Linear(8, 2))
    assert capture(model, made_inside, 0, "0").grads.shape == (1, 2, 2, 2) and made_inside.is_inference()


def test_preserved_leaves_inference_mode_inside_and_restores_both_modes():
    model = nn.Linear(2, 2)
    for outer in (torch.inference_mode, torch.no_grad, torch.enable_grad):
        with outer():
            grad_mode, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
            with preserved(model):
                assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled() == grad_mode
                with torch.enable_grad():
                    x = torch.ones(1, 2, requires_grad=True)
                    assert torch.autograd.grad(model(x).sum(), x)[0].shape == (1, 2)
            assert (torch.is_grad_enabled(), torch.is_inference_mode_enabled()) == (grad_mode, inference)


def test_feature_maps_are_4d_and_a_2d_output_is_not_applicable():
    acts = torch.rand(2, 3, 4, 4)
    assert check_feature_maps(acts, "relu", "Grad-CAM") is acts
    with pytest.raises(NotApplicable, match=r"output; the model itself \(layer ''\) gives"):
        check_feature_maps(torch.rand(2, 3), "", "Grad-CAM")
    with pytest.raises(NotApplicable, match=r"^Grad-CAM needs a layer with \(N, K, h, w\) output; 'fc' gives \(2, 3\)"):
        check_feature_maps(torch.rand(2, 3), "fc", "Grad-CAM")


def test_not_applicable_carries_its_message():
    assert str(NotApplicable("CAM needs GAP -> fc; use Grad-CAM")) == "CAM needs GAP -> fc; use Grad-CAM"


def test_several_classes_per_image_only_where_asked_for():
    table = torch.tensor([[0, 3], [1, 1]])
    assert torch.equal(check_targets(table, 2, 4, several=True), table)
    assert check_targets(np.array([[2, 0]]), 3, 4, several=True).tolist() == [[2, 0]] * 3   # one row for all
    assert check_targets([0, 3], 2, 4, several=True).tolist() == [0, 3]                    # (N,) stays (N,)
    with pytest.raises(ValueError, match="int or 1-D, got shape"):
        check_targets(table, 2, 4)
    with pytest.raises(ValueError, match=r"needs K >= 1 classes"):
        check_targets(torch.zeros(2, 0, dtype=torch.long), 2, 4, several=True)
    with pytest.raises(ValueError, match="3 rows but x holds 2 images"):
        check_targets(torch.zeros(3, 1, dtype=torch.long), 2, 4, several=True)
    with pytest.raises(TypeError, match=r"a \(N, K\) tensor"):
        check_targets([[0, 1], [1, 0]], 2, 4, several=True)


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

def test_a_huge_or_complex_target_is_refused_by_name_not_a_raw_error():
    """Defect 7: target 2**63 raised a raw RuntimeError, a complex target was truncated to its real part."""
    with pytest.raises(ValueError, match=r"target 9223372036854775808 is out of range: the model has 4 classes"):
        check_targets(2 ** 63, 2, 4)
    with pytest.raises(ValueError, match="out of range: a class index fits in 64 bits"):
        check_targets([2 ** 63, 0], 2)
    for bad in (torch.tensor([1 + 0j, 2 + 0j]), np.array([1 + 0j, 2 + 0j]), 1 + 0j, [1, 2 + 0j]):
        with pytest.raises(TypeError, match="integer class indices"):
            check_targets(bad, 2, 4)


def test_a_batchnorm_without_running_statistics_is_refused_by_name():
    """Defect 7: BatchNorm2d(track_running_stats=False) made one image's map depend on the batch, unsaid."""
    from minicam.checks import check_model
    import minicam
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(NotApplicable, match=r"BatchNorm '1' keeps no running statistics .* depend on the other images"):
        minicam.gradcam(model, torch.rand(2, 3, 8, 8), 0, "2")
    with pytest.raises(TypeError, match="not a TorchScript module"):
        check_model(torch.jit.script(nn.Linear(2, 2)))
