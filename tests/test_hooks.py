"""What a user relies on: the model is left exactly as it was, the methods work in the settings
people use them in (no_grad, in-place ReLU, batches, torchvision models), and bad input says what is wrong.
The contract every method keeps (state restored, no hooks, no_grad, batch == one by one) is checked for
every entry of the method table in tests/test_methods.py."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import minicam
from minicam.hooks import hooked, replaced_outputs, trace
from minicam.methods import METHODS
from tiny_models import all_hooks, small_model


@pytest.fixture(scope="module")
def resnet():
    """torchvision's ResNet-18 (in-place ReLUs, BasicBlocks), shared: every method leaves it as it was."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


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


def test_layer_given_as_module_or_name():
    model = small_model()
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(minicam.gradcam(model, x, 0, model.relu2), minicam.gradcam(model, x, 0, "relu2"))


def test_torchvision_resnet_in_place_relu_and_every_method(resnet):
    model = resnet
    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 40)   # layer4 still 2x2 as at 64x64 (layer3 3x3), with 40% of the pixels
    for name, method in METHODS.items():
        out = method(model, x, [3, 7], "layer4")
        assert torch.isfinite(out).all(), name
        assert out.shape[-2:] == ((2, 2) if method.needs_layer and name != "Guided Grad-CAM" else (40, 40)), name
    # In-place ReLUs after the layer must not change the captured activations: compare with a
    # plain forward hook's copy.
    copy = []
    h = model.layer3[0].bn2.register_forward_hook(lambda m, i, o: copy.append(o.detach().clone()))
    with torch.no_grad():
        model(x)
    h.remove()
    got = minicam.capture(model, x, 3, "layer3.0.bn2")
    assert got.acts.shape[-2:] == (3, 3)
    torch.testing.assert_close(got.acts, copy[0])
    assert (got.acts < 0).any()  # pre-ReLU values, not overwritten by relu_ downstream


def test_torchvision_vgg():
    torch.manual_seed(0)
    # init_weights=False keeps PyTorch's default init and skips VGG's second pass over its 120M weights
    model = torchvision.models.vgg11(num_classes=5, init_weights=False).eval()
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


def test_layer_that_runs_twice_is_refused(resnet):
    with pytest.raises(ValueError, match="ran 2 times"):
        minicam.gradcam(resnet, torch.rand(1, 3, 32, 32), 0, "layer1.0.relu")


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


def test_trace_sees_every_module_once_in_the_order_it_finishes():
    model = small_model()
    x = torch.rand(2, 3, 8, 8)
    found = trace(model.train(), x)
    assert found.order == ["conv1", "bn1", "relu1", "drop", "conv2", "relu2", "gap", "flatten", "fc"]
    assert set(found.runs.values()) == {1} and len(found.shapes["flatten"]) == 2 and len(found.shapes["relu2"]) == 4
    scores, (acts,) = minicam.forward_acts(model, x, ["relu2"])
    torch.testing.assert_close(found.scores, scores)                  # in eval mode, as every method runs
    torch.testing.assert_close(found.means["relu2"], acts.mean(dim=(2, 3)))
    assert model.training and all_hooks(model) == 0
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Conv2d(3, 2, 1), shared, nn.Conv2d(2, 2, 1), shared, nn.Flatten(), nn.Linear(128, 2))
    assert trace(twice, x).runs["1"] == 2


def test_hooked_removes_its_hooks_also_when_the_block_raises():
    model = small_model()
    seen = []
    with pytest.raises(RuntimeError, match="inside"):
        with hooked([(model.relu2, lambda m, i, out: seen.append(out.shape))]):
            model(torch.rand(1, 3, 8, 8))
            raise RuntimeError("inside")
    assert seen == [(1, 6, 8, 8)] and all_hooks(model) == 0


def test_replaced_outputs_replace_each_output_for_the_block_only():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.tensor([[-1.0, 2.0]])
    with replaced_outputs([model[0], model[1]], lambda t: t * 10):
        assert torch.equal(model(x), torch.tensor([[0.0, 200.0]]))   # relu(10 x) * 10
    assert torch.equal(model(x), torch.tensor([[0.0, 2.0]])) and all_hooks(model) == 0


# ---- issue 12 -------------------------------------------------------------------------------------

def test_capture_inside_inference_mode_is_the_capture_outside_and_the_mode_comes_back():
    model, x = small_model(), torch.rand(2, 3, 8, 8)
    for layer in ("relu2", None):
        expected = minicam.capture(model, x, [1, 2], layer)
        with torch.inference_mode():
            got = minicam.capture(model, x, [1, 2], layer)
            assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert (got.grads != 0).any() and torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    with torch.inference_mode():
        with pytest.raises(minicam.NotApplicable):
            minicam.gradcam(model, x, 0, "flatten")     # an error inside: inference mode still comes back
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()


NO_GRAPH = r"no autograd graph back to (layer 'net\.relu[12]'|the input x|the image)"


def test_scores_without_a_graph_back_to_the_layer_are_an_error_not_zero_gradients():
    class Detached(nn.Module):
        def __init__(self, how):
            super().__init__()
            self.net, self.how = small_model(), how

        def forward(self, x):
            a = self.net[:6](x)
            if self.how == "detach":
                return self.net[6:](a.detach())
            with torch.no_grad():
                return self.net[6:](a)

    x = torch.rand(2, 3, 8, 8)
    for how in ("no_grad", "detach"):
        model = Detached(how)
        for call in (lambda: minicam.capture(model, x, 0, "net.relu2"), lambda: minicam.capture(model, x, 0),
                     lambda: minicam.gradcam(model, x, 0, "net.relu1"), lambda: minicam.guided_backprop(model, x, 0),
                     lambda: minicam.class_model(model, 0, (3, 8, 8), steps=2)):
            with pytest.raises(minicam.NotApplicable, match=NO_GRAPH):
                call()
            assert torch.is_grad_enabled() and model.training and all_hooks(model) == 0


def test_forward_acts_takes_one_layer_as_a_list_of_one():
    model, x = small_model(), torch.rand(2, 3, 8, 8)
    scores, (acts,) = minicam.forward_acts(model, x, "relu2")    # was read as the layers 'r', 'e', 'l', ...
    expected_scores, (expected,) = minicam.forward_acts(model, x, ["relu2"])
    torch.testing.assert_close(acts, expected)
    torch.testing.assert_close(minicam.forward_acts(model, x, model.relu2)[1][0], expected)
    with pytest.raises(TypeError, match="layers must be a list"):
        minicam.forward_acts(model, x, 2)


def test_numpy_integers_are_targets():
    model, x = small_model(), torch.rand(2, 3, 8, 8)
    expected = minicam.gradcam(model, x, [1, 2], "relu2")
    for target in (np.array([1, 2]), [np.int64(1), np.int32(2)], (np.int64(1), 2)):
        torch.testing.assert_close(minicam.gradcam(model, x, target, "relu2"), expected, rtol=0, atol=0)
    torch.testing.assert_close(minicam.saliency(model, x, np.int64(2)), minicam.saliency(model, x, 2), rtol=0, atol=0)
    with pytest.raises(TypeError, match="integer class indices"):
        minicam.gradcam(model, x, np.array([1.0, 2.0]), "relu2")


# ---- issue 14: a target of T classes per image -------------------------------------------------------

def test_capture_of_classes_per_image_has_a_row_per_image_and_class():
    model, x = small_model().eval(), torch.rand(2, 3, 8, 8)
    targets = torch.tensor([[2, 0, 1], [1, 1, 2]])
    cap = minicam.capture(model, x, targets, "relu2")
    assert cap.acts.shape == (6, 6, 8, 8) and cap.scores.shape == (6, 3)
    for row, (i, k) in enumerate((i, k) for i in range(2) for k in range(3)):   # image by image
        one = minicam.capture(model, x[i:i + 1], int(targets[i, k]), "relu2")
        torch.testing.assert_close(cap.grads[row], one.grads[0])   # one image or two: the last bits may differ
        torch.testing.assert_close(cap.acts[row], one.acts[0])
        torch.testing.assert_close(cap.scores[row], one.scores[0])
    saliency = minicam.capture(model, x, targets, None)                 # the input as A, too
    torch.testing.assert_close(saliency.grads[4], minicam.capture(model, x[1:], 1, None).grads[0])


def test_pair_rows_and_per_image_undo_each_other():
    from minicam.hooks import pair_rows, per_image
    t, targets = torch.arange(6.0).view(2, 3), torch.tensor([[0, 1], [2, 2]])
    rows = pair_rows(t, targets)
    assert rows.tolist() == [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]
    assert per_image(rows, targets).shape == (2, 2, 3) and torch.equal(per_image(rows, targets)[:, 0], t)
    assert pair_rows(t, targets[:, 0]) is t and per_image(t, targets[:, 0]) is t and per_image(t, 1) is t


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

def test_the_default_layer_has_spatial_extent():
    """Defect 4: the default layer of mobilenet_v3_small was a squeeze-excitation ReLU with 1x1 maps."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=5).eval()
    x = torch.rand(1, 3, 64, 64)
    layers = minicam.explainable_layers(model, x)
    assert "features.11.block.2.fc1" in layers or any(".fc" in n for n in layers)   # 1x1 layers are explainable
    layer = minicam.default_layer(model, x)
    _, (acts,) = minicam.forward_acts(model, x, [layer])
    assert acts.shape[-1] * acts.shape[-2] > 1 and layer == "features"
    assert minicam.default_layer(small_model(), torch.rand(1, 3, 8, 8)) == "relu2"


def test_explainable_layers_run_once_and_output_maps():
    model = small_model()
    assert minicam.explainable_layers(model, torch.rand(2, 3, 8, 8)) == ["conv1", "bn1", "relu1", "drop", "conv2",
                                                                          "relu2", "gap"]
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Conv2d(3, 2, 1), shared, nn.Conv2d(2, 2, 1), shared, nn.Flatten(), nn.Linear(128, 2))
    assert minicam.explainable_layers(twice, torch.rand(1, 3, 8, 8)) == ["0", "2"]
