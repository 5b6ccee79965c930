"""The method table's common contract, checked for every entry: a new method is one entry in
minicam.methods.METHODS and is tested here automatically."""

import pytest
import torch
from torch import nn

import minicam
from minicam.checks import NotApplicable
from minicam.methods import CAM_FAMILY, METHODS
from tiny_models import Functional, all_hooks, small_model


def test_the_table_holds_every_method_of_the_suite():
    assert set(METHODS) == {"saliency", "guided backprop", "CAM", "Grad-CAM", "Grad-CAM (counterfactual)",
                            "Grad-CAM++", "Guided Grad-CAM", "LRP", "Relevance-CAM"}
    assert CAM_FAMILY == ("Grad-CAM", "Grad-CAM (counterfactual)", "Grad-CAM++", "CAM")
    assert [n for n, m in METHODS.items() if not m.needs_layer] == ["saliency", "guided backprop", "LRP"]
    assert issubclass(NotApplicable, ValueError) and minicam.NotApplicable is NotApplicable


@pytest.mark.parametrize("name", METHODS)
def test_shape_is_the_layers_or_the_images(name):
    model, x = small_model(), torch.rand(2, 3, 8, 6)
    out = METHODS[name](model, x, [0, 2], "relu2")
    assert out.shape[0] == 2 and out.shape[-2:] == (8, 6) and not out.requires_grad
    assert out.dim() in (3, 4) and (out.dim() == 3 or out.shape[1] == 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", METHODS)
def test_model_left_exactly_as_it_was(name):
    model = small_model()
    model.train()
    model.bn1.eval()                         # a mixed state must come back mixed
    model.conv1.weight.requires_grad_(False)
    marker = torch.full_like(model.fc.weight, 7.0)
    model.fc.weight.grad = marker
    METHODS[name](model, torch.rand(2, 3, 8, 8), 1, "relu2")
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
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("name", METHODS)
def test_batch_equals_images_one_by_one(name):
    model = small_model()
    x = torch.rand(3, 3, 8, 8)
    targets = [2, 0, 1]
    batch = METHODS[name](model, x, targets, "relu2")
    for i, t in enumerate(targets):
        torch.testing.assert_close(batch[i:i + 1], METHODS[name](model, x[i:i + 1], t, "relu2"))


@pytest.mark.parametrize("name", CAM_FAMILY)
def test_cam_family_from_one_capture_is_the_direct_call(name):
    model, x, targets = small_model(), torch.rand(3, 3, 8, 8), torch.tensor([2, 0, 1])
    cap = minicam.capture(model, x, targets, "relu2")
    torch.testing.assert_close(METHODS[name].from_capture(model, "relu2", cap, targets),
                               METHODS[name](model, x, targets, "relu2"), rtol=0, atol=0)


def test_methods_outside_the_cam_family_have_no_weights():
    with pytest.raises(TypeError, match="not of the CAM family"):
        METHODS["saliency"].from_capture(small_model(), "relu2", None, torch.tensor([0]))



@pytest.mark.parametrize("name", METHODS)
def test_a_method_that_does_not_apply_says_so_with_not_applicable(name):
    model, x = Functional(), torch.rand(2, 3, 8, 8)
    if name in ("saliency", "Grad-CAM", "Grad-CAM (counterfactual)", "Grad-CAM++"):
        assert METHODS[name](model, x, 1, "b").shape[0] == 2
    else:  # CAM: b's output is not rectified before the mean; guided backprop: no nn.ReLU; LRP: a custom forward
        with pytest.raises(NotApplicable):
            METHODS[name](model, x, 1, "b")
    with pytest.raises(ValueError) as error:  # a wrong argument where the method applies: not NotApplicable
        METHODS[name](small_model(), x, 5, "relu2")
    assert not isinstance(error.value, NotApplicable) and "out of range" in str(error.value)


# ---- issue 12: inference mode, a head without a graph, non-finite x, layers without positions ----------

@pytest.mark.parametrize("name", METHODS)
def test_inside_inference_mode_the_same_map_and_the_modes_come_back(name):
    model, x = small_model().eval(), torch.rand(2, 3, 8, 8)
    expected = METHODS[name](model, x, [0, 2], "relu2")
    with torch.inference_mode():
        got = METHODS[name](model, x, [0, 2], "relu2")
        made_inside = x.clone()                      # an inference tensor: autograd cannot save it
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(METHODS[name](model, made_inside, [0, 2], "relu2"), expected)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled() and not got.requires_grad
    with torch.no_grad(), pytest.raises(ValueError):  # an error inside no_grad: grad mode still comes back
        METHODS[name](model, x, 7, "relu2")
    assert torch.is_grad_enabled()


class NoGradHead(nn.Module):
    """small_model, whose layers after relu2 run under the model's own torch.no_grad() if `detached`."""

    def __init__(self, detached: bool):
        super().__init__()
        self.net, self.detached = small_model().eval(), detached

    def forward(self, x):
        body, head = self.net[:6], self.net[6:]
        a = body(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detached):
            return head(a)


@pytest.mark.parametrize("name", METHODS)
def test_a_head_without_a_graph_is_an_error_never_zeros(name):
    """Right or an error: a method gives the map it gives on the same model with the graph, or raises
    NotApplicable saying the scores have no graph (Grad-CAM used to read the missing gradient as 0)."""
    x, layer = torch.rand(2, 3, 8, 8), "net.relu2"
    try:
        expected = METHODS[name](NoGradHead(False), x, [0, 2], layer)
    except NotApplicable:       # LRP and Relevance-CAM: a custom forward is not a chain they can walk
        expected = None
    try:
        got = METHODS[name](NoGradHead(True), x, [0, 2], layer)
    except NotApplicable as error:
        assert expected is None or "no autograd graph" in str(error)
        return
    assert expected is not None, f"{name} applies to the model only when its head has no graph"
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", METHODS)
def test_a_non_finite_pixel_is_an_error_naming_x(name, value):
    model, x = small_model(), torch.rand(2, 3, 8, 8)
    x[1, 2, 3, 4] = value
    with pytest.raises(ValueError, match=r"^x holds 1 NaN or inf value\(s\) of 384; it must be finite"):
        METHODS[name](model, x, [0, 2], "relu2")


@pytest.mark.parametrize("layer", ["flatten", "fc", ""])
@pytest.mark.parametrize("name", [name for name, method in METHODS.items() if method.needs_layer])
def test_a_layer_with_2d_output_is_not_applicable_naming_it(name, layer):
    model = small_model()
    with pytest.raises(NotApplicable, match=r"(?s)needs a layer with \(N, K, h, w\) output; .*gives \(2, [36]\).*conv"):
        METHODS[name](model, torch.rand(2, 3, 8, 8), 0, layer or model)


# ---- issue 14: T classes per image from one forward pass -----------------------------------------------

def forward_calls(model):
    """A list that grows by one at each forward pass of the whole model (its top module), and the hook's handle."""
    calls = []
    return calls, model.register_forward_hook(lambda *_: calls.append(1))


def check_classes_per_image(name, model, x, targets, layer):
    """METHODS[name] with (N, T) targets: the T separate calls stacked, with the forward passes of one call."""
    method = METHODS[name]
    calls, handle = forward_calls(model)
    try:
        together = method(model, x, targets, layer)
        one_call = len(calls)
        separate = [method(model, x, targets[:, k], layer) for k in range(targets.shape[1])]
    finally:
        handle.remove()
    assert together.shape == (len(x), targets.shape[1], *separate[0].shape[1:])
    torch.testing.assert_close(together, torch.stack(separate, dim=1))
    assert len(calls) == one_call * (targets.shape[1] + 1)  # as many forward passes as one separate call


@pytest.mark.parametrize("name", METHODS)
def test_classes_per_image_are_the_separate_calls_from_one_forward_pass(name):
    model, x = small_model(), torch.rand(3, 3, 8, 8)
    targets = torch.tensor([[2, 0, 1], [1, 1, 0], [0, 2, 2]])   # a class twice in a row is allowed
    check_classes_per_image(name, model, x, targets, "relu2")
    check_classes_per_image(name, model, x, targets.numpy(), "relu2")   # a numpy array works too
    got = METHODS[name](model, x, torch.tensor([[2, 0]]), "relu2")     # one row: the same classes for all
    torch.testing.assert_close(got, METHODS[name](model, x, torch.tensor([[2, 0]] * 3), "relu2"))
    assert METHODS[name](model, x, 1, "relu2").dim() == got.dim() - 1   # an int keeps returning (N, ...)


@pytest.fixture(scope="module")
def resnet18():
    import torchvision
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=6).eval()


@pytest.mark.parametrize("name", METHODS)
def test_classes_per_image_on_a_torchvision_resnet(name, resnet18):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    layer = "layer4" if name == "CAM" else "layer3"   # CAM needs the GAP -> fc layer
    check_classes_per_image(name, resnet18, x, torch.tensor([[4, 1]]), layer)


@pytest.mark.parametrize("name", CAM_FAMILY)
def test_cam_family_from_one_capture_of_classes_per_image(name):
    model, x, targets = small_model(), torch.rand(2, 3, 8, 8), torch.tensor([[2, 0], [1, 1]])
    cap = minicam.capture(model, x, targets, "relu2")
    assert len(cap.scores) == len(cap.acts) == len(cap.grads) == 4    # one row per (image, class) pair
    torch.testing.assert_close(METHODS[name].from_capture(model, "relu2", cap, targets),
                               METHODS[name](model, x, targets, "relu2"), rtol=0, atol=0)
    torch.testing.assert_close(METHODS[name].from_capture(model, "relu2", cap, targets.flatten()),
                               METHODS[name](model, x, targets, "relu2").flatten(0, 1), rtol=0, atol=0)


@pytest.mark.parametrize("target, message", [
    (torch.zeros(2, 0, dtype=torch.long), "K >= 1"),
    (torch.zeros(3, 2, dtype=torch.long), "3 rows but x holds 2 images"),
    (torch.tensor([[0, 3], [1, 1]]), "target 3 is out of range"),
    (torch.zeros(2, 2, 1, dtype=torch.long), r"or \(N, K\) for K classes per image"),
])
@pytest.mark.parametrize("name", METHODS)
def test_bad_classes_per_image_name_the_target(name, target, message):
    with pytest.raises(ValueError, match=message):
        METHODS[name](small_model(), torch.rand(2, 3, 8, 8), target, "relu2")


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

@pytest.mark.parametrize("name", CAM_FAMILY)
def test_from_capture_checks_its_targets_against_the_capture(name):
    """Defect 6: from_capture with other targets returned the capture's maps under the new labels."""
    model, x = small_model(), torch.rand(2, 3, 8, 8)
    cap = minicam.capture(model, x, [0, 1], "relu2")
    torch.testing.assert_close(METHODS[name].from_capture(model, "relu2", cap, torch.tensor([0, 1])),
                               METHODS[name](model, x, [0, 1], "relu2"))
    with pytest.raises(ValueError, match=r"targets \[1, 0\] are not the classes the capture was taken for, \[0, 1\]"):
        METHODS[name].from_capture(model, "relu2", cap, torch.tensor([1, 0]))
