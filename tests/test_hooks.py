"""What a user relies on: the model is left exactly as it was, the methods work in the settings
people use them in (no_grad, in-place ReLU, batches, torchvision models), and bad input says what is wrong."""
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

import minicam

METHODS = {
    "saliency": lambda m, x, t, layer: minicam.saliency(m, x, t),
    "gradcam": minicam.gradcam,
    "gradcam_pp": minicam.gradcam_pp,
    "guided_backprop": lambda m, x, t, layer: minicam.guided_backprop(m, x, t),
    "guided_gradcam": minicam.guided_gradcam,
    "cam": lambda m, x, t, layer: minicam.cam(m, x, t, layer, "fc"),
}


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 4, 3, padding=1), bn1=nn.BatchNorm2d(4), relu1=nn.ReLU(inplace=True),
        drop=nn.Dropout(0.5), conv2=nn.Conv2d(4, 6, 3, padding=1), relu2=nn.ReLU(),
        gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(6, 3)))


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", METHODS)
def test_model_left_exactly_as_it_was(name):
    model = small_model()
    model.train()
    model.bn1.eval()                         # a mixed state must come back mixed
    model.conv1.weight.requires_grad_(False)
    marker = torch.full_like(model.fc.weight, 7.0)
    model.fc.weight.grad = marker
    x = torch.rand(2, 3, 8, 8)
    METHODS[name](model, x, 1, "relu2")
    assert model.training and not model.bn1.training and model.drop.training
    assert not model.conv1.weight.requires_grad and model.conv2.weight.requires_grad
    assert model.fc.weight.grad is marker and torch.equal(marker, torch.full_like(marker, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    assert all_hooks(model) == 0


@pytest.mark.parametrize("name", METHODS)
def test_runs_in_eval_mode_inside_no_grad(name):
    model = small_model()
    x = torch.rand(2, 3, 8, 8)
    model.eval()
    expected = METHODS[name](model, x, [0, 2], "relu2")
    model.train()                              # dropout on: the method must still switch it off
    with torch.no_grad():
        got = METHODS[name](model, x, [0, 2], "relu2")
    torch.testing.assert_close(got, expected)
    assert not got.requires_grad and torch.isfinite(got).all()


def test_grad_mode_restored_after_call():
    model = small_model()
    with torch.no_grad():
        minicam.gradcam(model, torch.rand(1, 3, 8, 8), 0, "relu2")
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_hooks_removed_and_state_restored_when_the_call_raises():
    model = small_model().train()
    x = torch.rand(2, 3, 8, 8)
    for call in (lambda: minicam.gradcam(model, x, 9, "relu2"),          # target out of range
                 lambda: minicam.cam(model, x, 0, "relu1", "fc"),          # not GAP -> fc from relu1
                 lambda: minicam.guided_gradcam(model, x, -1, "relu2")):
        with pytest.raises(ValueError):
            call()
        assert all_hooks(model) == 0 and model.training and torch.is_grad_enabled()


@pytest.mark.parametrize("name", ["gradcam", "gradcam_pp", "saliency", "guided_gradcam"])
def test_batch_equals_images_one_by_one(name):
    model = small_model()
    x = torch.rand(3, 3, 8, 8)
    targets = [2, 0, 1]
    batch = METHODS[name](model, x, targets, "relu2")
    for i, t in enumerate(targets):
        torch.testing.assert_close(batch[i:i + 1], METHODS[name](model, x[i:i + 1], t, "relu2"))


def test_layer_given_as_module_or_name():
    model = small_model()
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(minicam.gradcam(model, x, 0, model.relu2), minicam.gradcam(model, x, 0, "relu2"))


def test_torchvision_resnet_in_place_relu_and_every_method():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.rand(2, 3, 64, 64)
    for name, method in METHODS.items():
        out = method(model, x, [3, 7], "layer4")
        assert torch.isfinite(out).all(), name
    # In-place ReLUs after the layer must not change the captured activations: compare with a
    # plain forward hook's copy.
    copy = []
    h = model.layer3[0].bn2.register_forward_hook(lambda m, i, o: copy.append(o.detach().clone()))
    with torch.no_grad():
        model(x)
    h.remove()
    got = minicam.capture(model, x, 3, "layer3.0.bn2")
    torch.testing.assert_close(got.acts, copy[0])
    assert (got.acts < 0).any()  # pre-ReLU values, not overwritten by relu_ downstream


def test_torchvision_vgg():
    torch.manual_seed(0)
    model = torchvision.models.vgg11(num_classes=5).eval()
    x = torch.rand(1, 3, 32, 32)
    maps = minicam.gradcam(model, x, 4, "features.18")
    assert maps.shape == (1, 2, 2) and torch.isfinite(maps).all()
    assert minicam.guided_backprop(model, x, 4).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="global average pooling"):
        minicam.cam(model, x, 4, "features.20", "classifier.6")


def test_unknown_layer_lists_closest_names_first():
    with pytest.raises(ValueError, match=r"layer 'relu3' not found; layers are \(closest first\): 'relu1'|'relu2'"):
        minicam.gradcam(small_model(), torch.rand(1, 3, 8, 8), 0, "relu3")


def test_bad_inputs_say_what_would_be_right():
    model = small_model()
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="out of range.*0..2"):
        minicam.gradcam(model, x, 3, "relu2")
    with pytest.raises(ValueError, match="4-D"):
        minicam.gradcam(model, x[0], 0, "relu2")
    with pytest.raises(TypeError, match="torch.Tensor"):
        minicam.saliency(model, x.numpy(), 0)
    with pytest.raises(ValueError, match="2 images"):
        minicam.gradcam(model, x, [0, 1, 2], "relu2")
    with pytest.raises(TypeError, match="bool"):
        minicam.gradcam(model, x, True, "relu2")
    with pytest.raises(ValueError, match="nn.Linear"):
        minicam.cam(model, x, 0, "relu2", "gap")
    with pytest.raises(ValueError, match="not part of the model"):
        minicam.gradcam(model, x, 0, nn.ReLU())


def test_cam_refuses_a_linear_layer_that_is_not_the_last():
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU(), gap=nn.AdaptiveAvgPool2d(1),
                                      flatten=nn.Flatten(), fc1=nn.Linear(4, 5), relu2=nn.ReLU(), fc2=nn.Linear(5, 3)))
    with pytest.raises(ValueError, match="last layer"):
        minicam.cam(model, torch.rand(1, 3, 8, 8), 0, "relu", "fc1")


def test_layer_that_runs_twice_is_refused():
    model = torchvision.models.resnet18(num_classes=3).eval()
    with pytest.raises(ValueError, match="ran 2 times"):
        minicam.gradcam(model, torch.rand(1, 3, 32, 32), 0, "layer1.0.relu")


def test_guided_backprop_needs_relu_modules():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ValueError, match="nn.ReLU"):
        minicam.guided_backprop(model, torch.rand(1, 3, 2, 2), 0)


def test_forward_acts_matches_capture():
    model = small_model()
    x = torch.rand(2, 3, 8, 8)
    scores, (a1, a2) = minicam.forward_acts(model, x, ["relu1", "relu2"])
    got = minicam.capture(model, x, 0, "relu2")
    torch.testing.assert_close(a2, got.acts)
    torch.testing.assert_close(scores, got.scores)
    assert a1.shape == (2, 4, 8, 8)
