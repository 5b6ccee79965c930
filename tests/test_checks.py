"""The argument checks: each wrong argument is named with what would be right; `preserved` restores
the model whatever happens; NotApplicable is the one "does not apply here" error."""
import pytest
import torch
from torch import nn

from minicam.checks import (NotApplicable, Unsupported, check_images, check_runs_once, check_scores, check_targets,
                            preserved, resolve_layer)


def test_targets_become_one_class_per_image():
    assert check_targets(2, 3, 4).tolist() == [2, 2, 2]
    assert check_targets([0, 3, 1], 3, 4).tolist() == [0, 3, 1]
    assert check_targets(torch.tensor(1), 2, 4).tolist() == [1, 1]
    assert check_targets(torch.tensor([3]), 2, 4).tolist() == [3, 3]
    assert check_targets(torch.tensor([1, 0], dtype=torch.int32), 2, 4).dtype == torch.long


@pytest.mark.parametrize("target, error, match", [
    (True, TypeError, "not a bool"),
    (torch.tensor([0.0, 1.0]), TypeError, "integer class indices"),
    (torch.tensor([[0, 1]]), ValueError, "1-D"),
    ([0, 1.0], TypeError, "list must hold ints"),
    ("cat", TypeError, "int, a list of ints or a tensor"),
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
    with pytest.raises(ValueError, match=r"\(N, classes\), got \(2, 3, 4\)"):
        check_scores(torch.rand(2, 3, 4))


def test_a_layer_must_run_exactly_once():
    check_runs_once("relu", 1)
    with pytest.raises(ValueError, match=r"layer 'relu' ran 2 times .*runs 2 times.*\(e\.g\. its parent block\)"):
        check_runs_once("relu", 2)
    with pytest.raises(ValueError, match="ran 0 times"):
        check_runs_once("relu", 0, hint="")


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
