"""The gradient family against hand-derived numbers (the documents' worked examples) and against
independent computations (autograd's higher derivatives, finite differences, a hand-written backward)."""
import copy
from collections import OrderedDict
from fractions import Fraction

import pytest
import torch
from torch import nn

import minicam


@pytest.fixture(autouse=True)
def _float64():
    """Exact fractions are compared in float64; the default is restored for other test files."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def frac_tensor(rows):
    return torch.tensor([[float(Fraction(v)) for v in row] for row in rows])


# ---- the Chinese document's 3x3 example (document 003) ----------------------------------------

A1 = [[1, 0, 2], [3, 5, 0], [1, 1, 1]]
A2 = [[0, 1, 0], [3, 1, 0], [1, 0, 1]]
# Gradient maps chosen so that their means are the document's alpha = (1/3, -2/3).
G1 = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]      # sum 3 -> mean 1/3
G2 = [[0, -2, 0], [-2, 0, -2], [0, 0, 0]]   # sum -6 -> mean -2/3


def chinese_network():
    """x (1, 2, 3, 3) -> 1x1 identity conv 'features' -> ReLU -> flatten -> fc; the fc row of class 0
    ('Cat') holds G1, G2, so dy^Cat/dA = G exactly (the ReLU passes A >= 0 unchanged)."""
    conv = nn.Conv2d(2, 2, 1, bias=False)
    fc = nn.Linear(18, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        fc.weight[0] = torch.tensor([G1, G2], dtype=torch.float64).flatten()
        fc.weight[1] = 1.0
    return nn.Sequential(OrderedDict(features=conv, relu=nn.ReLU(), flatten=nn.Flatten(), fc=fc))


def test_chinese_example_by_hand():
    acts = torch.tensor([[A1, A2]], dtype=torch.float64)
    grads = torch.tensor([[G1, G2]], dtype=torch.float64)
    weights = minicam.gradcam_weights(grads)
    torch.testing.assert_close(weights, torch.tensor([[1 / 3, -2 / 3]]))
    before_relu = minicam.weighted_sum(weights, acts, relu=False)[0]
    torch.testing.assert_close(before_relu, frac_tensor(
        [["1/3", "-2/3", "2/3"], ["-1", "1", "0"], ["-1/3", "1/3", "-1/3"]]))
    torch.testing.assert_close(minicam.weighted_sum(weights, acts)[0], frac_tensor(
        [["1/3", "0", "2/3"], ["0", "1", "0"], ["0", "1/3", "0"]]))


def test_chinese_example_network_produces_the_gradients_and_the_map():
    model = chinese_network()
    x = torch.tensor([[A1, A2]], dtype=torch.float64)
    got = minicam.capture(model, x, 0, "relu")
    torch.testing.assert_close(got.acts[0], x[0])
    torch.testing.assert_close(got.grads[0], torch.tensor([G1, G2], dtype=torch.float64))
    torch.testing.assert_close(minicam.gradcam(model, x, 0, "relu")[0], frac_tensor(
        [["1/3", "0", "2/3"], ["0", "1", "0"], ["0", "1/3", "0"]]))


# ---- the tiny conv + fc network of document 003 -----------------------------------------------

def tiny_network():
    conv = nn.Conv2d(1, 1, 2, bias=False)
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 0.0], [1.0, 2.0]]]]))
        fc.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]]))
    return nn.Sequential(OrderedDict(conv=conv, flatten=nn.Flatten(), fc=fc))


def test_tiny_network_forward_and_gradients():
    model = tiny_network()
    X_TINY = torch.tensor([[[[1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [2.0, 1.0, 2.0]]]])
    got = minicam.capture(model, X_TINY, 0, "conv")
    torch.testing.assert_close(got.acts[0, 0], torch.tensor([[4.0, 7.0], [5.0, 6.0]]))
    torch.testing.assert_close(got.scores[0], torch.tensor([13.0, 15.0]))
    torch.testing.assert_close(got.grads[0, 0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    at_input = minicam.capture(model, X_TINY, 0)
    torch.testing.assert_close(at_input.grads[0, 0], torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 1.0, 2.0]]))
    # Grad-CAM: alpha = mean(0, 1, 0, 1) = 1/2, so the map is O / 2.
    torch.testing.assert_close(minicam.gradcam(model, X_TINY, 0, "conv")[0], torch.tensor([[2.0, 3.5], [2.5, 3.0]]))


# ---- the Korean one-hot intuition for Grad-CAM++ (document 000, paper Fig. 2) ------------------

def one_hot_maps():
    """Three binary 8x10 maps: a 3-wide x 5-tall block, a 2x2 block, a vertical 2x1 block."""
    acts = torch.zeros(1, 3, 8, 10)
    acts[0, 0, 1:6, 1:4] = 1
    acts[0, 1, 2:4, 6:8] = 1
    acts[0, 2, 5:7, 8] = 1
    return acts, acts.clone()  # gradient 1 where the map is 1, else 0


def test_one_hot_gradcam_weights():
    acts, grads = one_hot_maps()
    torch.testing.assert_close(minicam.gradcam_weights(grads), torch.tensor([[15 / 80, 4 / 80, 2 / 80]]))
    cam = minicam.weighted_sum(minicam.gradcam_weights(grads), acts)
    assert [round(cam[0][acts[0, k] > 0].max().item() / cam.max().item(), 2) for k in range(3)] == [1.0, 0.27, 0.13]


def test_one_hot_eq19_literally_and_eq6():
    acts, grads = one_hot_maps()
    torch.testing.assert_close(minicam.gradcampp_weights(acts, grads), torch.tensor([[15 / 17, 4 / 6, 2 / 4]]))
    # eq. 6: alpha = 1 / sum_lm dy/dA_lm where the gradient is 1, else 0 -> every weight is 1.
    alpha6 = torch.where(grads == 1, 1 / grads.sum(dim=(2, 3), keepdim=True), torch.zeros_like(grads))
    torch.testing.assert_close((alpha6 * grads.clamp(min=0)).sum(dim=(2, 3)), torch.ones(1, 3))


def test_gradcampp_alpha_never_divides_by_zero():
    acts = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])          # sum A = 2
    grads = torch.tensor([[[[-1.0, 0.0], [0.5, 0.0]]]])        # 2 + 2 * (-1) = 0 at (0, 0)
    alphas = minicam.gradcampp_alphas(acts, grads)
    assert torch.isfinite(alphas).all()
    assert alphas[0, 0, 0, 0] == 0 and alphas[0, 0, 0, 1] == 0 and alphas[0, 0, 1, 1] == 0
    torch.testing.assert_close(alphas[0, 0, 1, 0], torch.tensor(0.25 / (0.5 + 2 * 0.125)))


# ---- independent checks ---------------------------------------------------------------------

def gap_model(seed=0, inplace=False):
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 6, 3, padding=1), relu1=nn.ReLU(inplace=inplace),
        conv2=nn.Conv2d(6, 5, 3, padding=1), relu2=nn.ReLU(inplace=inplace),
        gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(5, 4)))


def test_cam_equals_gradcam_times_z():
    model = gap_model()
    x = torch.rand(3, 3, 7, 6)
    for c in range(4):
        cam = minicam.cam(model, x, c, "relu2", "fc")
        grad = minicam.gradcam(model, x, c, "relu2")
        torch.testing.assert_close(cam.clamp(min=0), grad * 7 * 6)  # Z = h * w


def test_cam_on_torchvision_resnet_equals_gradcam_times_z():
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).double().eval()
    x = torch.rand(2, 3, 64, 64)
    cam = minicam.cam(model, x, [1, 3], "layer4", "fc")
    torch.testing.assert_close(cam.clamp(min=0), minicam.gradcam(model, x, [1, 3], "layer4") * 4)


def diag_derivative(f, acts, order):
    """d^order f / (dA_i)^order for every element i, by autograd with create_graph."""
    out = torch.zeros_like(acts)
    for i in range(acts.numel()):
        a = acts.detach().clone().requires_grad_(True)
        d = f(a)
        for _ in range(order):
            (g,) = torch.autograd.grad(d, a, create_graph=True)
            d = g.flatten()[i]
        out.view(-1)[i] = d.detach()
    return out


def test_gradcampp_equals_general_alpha_from_autograd_higher_derivatives():
    model = gap_model(seed=1)
    x = torch.rand(1, 3, 5, 4)
    c = 2
    got = minicam.capture(model, x, c, "relu1")
    head = nn.Sequential(*list(model.children())[2:])  # conv2 .. fc, a piecewise-linear function of A
    Y = lambda a: torch.exp(head(a)[0, c])  # the paper's exponential score
    d1 = diag_derivative(Y, got.acts, 1)
    d2 = diag_derivative(Y, got.acts, 2)
    d3 = diag_derivative(Y, got.acts, 3)
    denom = 2 * d2 + got.acts.sum(dim=(2, 3), keepdim=True) * d3              # eq. 10
    alpha = torch.where(denom != 0, d2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
    weights = (alpha * d1.clamp(min=0)).sum(dim=(2, 3)) / torch.exp(got.scores[0, c])
    torch.testing.assert_close(minicam.gradcampp_weights(got.acts, got.grads), weights)
    assert got.grads[0, 0].unique().numel() > 2  # the gradient really varies over space
    expected = (weights[:, :, None, None] * got.acts).sum(1).clamp(min=0)
    torch.testing.assert_close(minicam.gradcam_pp(model, x, c, "relu1"), expected)
    # The variant with g^3 inside the sum, sum_ab A_ab g_ab^3, is a different number here.
    g = got.grads
    wrong = g**2 / (2 * g**2 + (got.acts * g**3).sum(dim=(2, 3), keepdim=True))
    wrong = (torch.nan_to_num(wrong) * g.clamp(min=0)).sum(dim=(2, 3))
    assert not torch.allclose(wrong, weights)


def test_saliency_equals_finite_differences():
    model = gap_model(seed=2)
    x = torch.rand(2, 3, 4, 5)
    target = [0, 3]
    eps = 1e-6
    fd = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(x[0].numel()):
            step = torch.zeros_like(x[0]).view(-1)
            step[i] = eps
            up, down = model(x + step.view_as(x[0])), model(x - step.view_as(x[0]))
            fd[:, :, :, :].view(2, -1)[:, i] = (up - down)[torch.arange(2), target] / (2 * eps)
    torch.testing.assert_close(minicam.saliency(model, x, target), fd.abs().amax(dim=1), atol=1e-6, rtol=1e-5)


def test_guided_backprop_equals_hand_written_rule():
    torch.manual_seed(3)
    lin1, lin2, lin3 = nn.Linear(6, 8), nn.Linear(8, 7), nn.Linear(7, 3)
    model = nn.Sequential(nn.Flatten(), lin1, nn.ReLU(), lin2, nn.ReLU(inplace=True), lin3)
    x = torch.randn(4, 1, 2, 3)
    target = 1
    a0 = x.flatten(1)
    z1 = a0 @ lin1.weight.T + lin1.bias
    z2 = z1.clamp(min=0) @ lin2.weight.T + lin2.bias
    g = torch.zeros(4, 3)
    g[:, target] = 1
    g = g @ lin3.weight                       # back through lin3
    g = g.clamp(min=0) * (z2 > 0)             # guided ReLU: positive signal, positive input
    g = g @ lin2.weight
    g = g.clamp(min=0) * (z1 > 0)
    g = g @ lin1.weight
    torch.testing.assert_close(minicam.guided_backprop(model, x, target), g.view_as(x))


def test_guided_gradcam_is_product():
    model = gap_model(seed=4)
    x = torch.rand(2, 3, 6, 6)
    expected = minicam.guided_backprop(model, x, 1) * minicam.upsample(minicam.gradcam(model, x, 1, "relu1"), (6, 6))[:, None]
    torch.testing.assert_close(minicam.guided_gradcam(model, x, 1, "relu1"), expected)


def test_counterfactual_uses_negative_gradients():
    model = gap_model(seed=5)
    x = torch.rand(1, 3, 6, 6)
    got = minicam.capture(model, x, 2, "relu1")
    expected = minicam.weighted_sum(minicam.gradcam_weights(-got.grads), got.acts)
    torch.testing.assert_close(minicam.gradcam(model, x, 2, "relu1", counterfactual=True), expected)


def test_class_model_is_gradient_ascent_from_zero():
    # For a linear score S = w.I + b, each step is I <- I + lr (w - 2 l2 I); from 0 after 2 steps:
    torch.manual_seed(6)
    lin = nn.Linear(12, 3)
    model = nn.Sequential(nn.Flatten(), lin)
    lr, l2 = 0.5, 0.1
    w = lin.weight[1].detach().view(3, 2, 2)
    step1 = lr * w
    step2 = step1 + lr * (w - 2 * l2 * step1)
    torch.testing.assert_close(minicam.class_model(model, 1, (3, 2, 2), steps=2, lr=lr, l2=l2), step2)
    # More steps raise the regularised objective.
    obj = lambda I: (model(I[None])[0, 1] - l2 * I.pow(2).sum()).item()
    assert obj(minicam.class_model(model, 1, (3, 2, 2), steps=20, lr=lr, l2=l2)) > obj(step2)


def test_cam_checks_its_condition_as_the_identity_scores_equal_fc_of_gap():
    model = gap_model(seed=7)
    x = torch.rand(2, 3, 6, 6)
    scores, (acts,) = minicam.forward_acts(model, x, ["relu2"])
    assert minicam.gradients._gap_fc(model, "relu2", scores, acts, None) is model.fc  # holds: no error
    with pytest.raises(minicam.NotApplicable, match="not the spatial mean of 'relu2'"):
        minicam.gradients._gap_fc(model, "relu2", scores, 2 * acts, None)
    torch.testing.assert_close(minicam.cam(model, x, [1, 2], "relu2"), minicam.cam(model, x, [1, 2], "relu2", "fc"))
    with pytest.raises(minicam.NotApplicable, match=r"\(N, K, h, w\) output; 'flatten' gives \(2, 5\)"):
        minicam.cam(model, x, 0, "flatten")  # checked before any mean over (2, 3) is taken


# ---- issue 12 -------------------------------------------------------------------------------------

def test_class_model_takes_dtype_and_device_from_the_model():
    torch.manual_seed(6)
    lin = nn.Linear(12, 3).float()               # the fixture's default dtype is float64: set each explicitly
    model32 = nn.Sequential(nn.Flatten(), lin)
    model64 = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    with torch.no_grad():
        model64[1].weight.copy_(lin.weight)
        model64[1].bias.copy_(lin.bias)
    torch.set_default_dtype(torch.float32)
    image64 = minicam.class_model(model64, 1, (3, 2, 2), steps=2, lr=0.5, l2=0.1)   # was: a dtype error
    image32 = minicam.class_model(model32, 1, (3, 2, 2), steps=2, lr=0.5, l2=0.1)
    assert image64.dtype == torch.float64 and image32.dtype == torch.float32
    w = model64[1].weight[1].detach().view(3, 2, 2)
    step1 = 0.5 * w
    torch.testing.assert_close(image64, step1 + 0.5 * (w - 2 * 0.1 * step1))
    torch.testing.assert_close(image32, image64.float())
    with torch.inference_mode():                 # was: an autograd error
        torch.testing.assert_close(minicam.class_model(model64, 1, (3, 2, 2), steps=2, lr=0.5, l2=0.1), image64)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        minicam.class_model(model64, 1, (3, 2, 2), lr=float("nan"))


@pytest.mark.parametrize("helper", ["gradcam_weights", "gradcampp_alphas", "gradcampp_weights", "weighted_sum"])
def test_the_map_helpers_refuse_2d_layer_outputs_naming_the_argument(helper):
    acts, grads = torch.rand(2, 5), torch.rand(2, 5)     # what a flatten or fc layer gives
    args = {"gradcam_weights": (grads,), "weighted_sum": (torch.rand(2, 5), acts)}.get(helper, (acts, grads))
    with pytest.raises(minicam.NotApplicable, match=r"needs a layer with \(N, K, h, w\) output; '?(acts|grads)'? gives "
                                                    r"\(2, 5\).*choose a conv layer"):
        getattr(minicam, helper)(*args)


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp", "guided_gradcam", "cam"])
def test_a_layer_with_2d_output_is_not_applicable_for_the_cam_maps(method):
    model = gap_model()
    for layer, shape in (("flatten", r"\(2, 5\)"), ("fc", r"\(2, 4\)"), (model, r"\(2, 4\)")):
        subject = "the model itself" if layer is model else repr(layer)
        with pytest.raises(minicam.NotApplicable, match=rf"\(N, K, h, w\) output; {subject}.* gives {shape}.*conv"):
            getattr(minicam, method)(model, torch.rand(2, 3, 6, 6), 0, layer)


# ---- issue 22: the second hostile probe's defects -------------------------------------------------

def test_a_compiled_model_gets_guided_backprop_after_any_other_method():
    """Defect 1: dynamo reused the graph it compiled without the ReLU hooks, so guided backprop after
    another method was the plain gradient, silently. The methods run the compiled model's own module."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    compiled = torch.compile(model, backend="eager")
    x = torch.rand(2, 3, 8, 8)
    want = minicam.guided_backprop(model, x, 1)
    assert not torch.allclose(want, minicam.saliency(model, x, 1).unsqueeze(1).expand_as(want))
    compiled(x)                                   # dynamo compiles the plain graph
    minicam.gradcam(compiled, x, 1, model[3])
    torch.testing.assert_close(minicam.guided_backprop(compiled, x, 1), want)
    torch.testing.assert_close(minicam.gradcam(compiled, x, 1, "3"), minicam.gradcam(model, x, 1, "3"))


def test_a_float16_model_gets_a_finite_gradcam_pp_map():
    """Defect 2: in float16, g^3 underflows and sum(A) overflows: Grad-CAM++ gave an all-NaN map with
    finite scores. The alphas are computed in float32; the map is the float32 model's to float16 precision."""
    from minicam.data import make_shapes
    from minicam.models import load_pretrained
    model = load_pretrained("shapes_resnet")
    x = make_shapes(2, seed=1000).images * 10          # pixels 0-10
    half = minicam.gradcam_pp(copy.deepcopy(model).half(), x.half(), [0, 1], "layer1")
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    full = minicam.gradcam_pp(model, x, [0, 1], "layer1")
    scale = full.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(half.float() / scale, full / scale, rtol=0, atol=0.05)


class FunctionalRelu(nn.Module):
    """conv -> nn.ReLU -> conv -> F.relu (not a module) -> GAP -> fc."""

    def __init__(self, act=None):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.relu, self.conv2 = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)
        self.act, self.fc = act, nn.Linear(4, 3)

    def forward(self, x):
        a = self.conv2(self.relu(self.conv1(x)))
        a = torch.nn.functional.relu(a) if self.act is None else self.act(a)
        return self.fc(a.mean(dim=(2, 3)))


@pytest.mark.parametrize("act, named", [(None, "relu as a function"), (nn.Hardswish(), "hardswish")])
def test_guided_backprop_refuses_a_model_it_would_guide_only_in_part(act, named):
    """Defect 7: a functional ReLU or a Hardswish was left unguided without a word."""
    model = FunctionalRelu(act)
    with pytest.raises(minicam.NotApplicable, match=rf"also calls {named} outside them \(1 time"):
        minicam.guided_backprop(model, torch.rand(2, 3, 8, 8), 0)
    with pytest.raises(minicam.NotApplicable, match="outside them"):
        minicam.guided_gradcam(model, torch.rand(2, 3, 8, 8), 0, "conv2")
    assert minicam.guided_backprop(gap_model(), torch.rand(2, 3, 6, 6), 0).shape == (2, 3, 6, 6)


def test_cam_condition_scales_with_the_logits():
    """Defect 7: the GAP -> fc identity had an absolute floor (1e-5) that tiny logits passed at any layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-4)
        model[4].bias.zero_()
    x = torch.rand(2, 3, 8, 8)
    assert model(x).abs().max() < 1e-7
    with pytest.raises(minicam.NotApplicable, match="not the spatial mean of '0'"):
        minicam.cam(model, x, 0, "0")   # before the ReLU: fc(GAP(conv)) != the scores
    torch.testing.assert_close(minicam.cam(model, x, 0, "1").sum(dim=(1, 2)) / 36 + model[4].bias[0],
                               model(x)[:, 0])
