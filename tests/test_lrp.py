"""LRP and Relevance-CAM: conservation layer by layer, each rule against an independent explicit-matrix
implementation (as zennit's tests do), the contrastive starts, BatchNorm folding, the ResNet path,
and the errors."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import minicam
from minicam.lrp import contrastive_start, lrp, relevance_cam


@pytest.fixture(autouse=True)
def _float64():
    """Conservation is checked to 1e-5 relative in float64; the default dtype is restored for other files."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def small_cnn(bias=False, seed=0):
    """conv -> relu -> maxpool -> (nested: conv -> relu) -> avgpool -> flatten -> linear, on 8x8 images."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 5, 3, padding=1, bias=bias), nn.ReLU()),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(20, 3, bias=bias))
    if bias:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.bias.uniform_(-0.5, 0.5)  # large enough that the absorbed relevance is visible
    return model.eval()


def total(R):
    return R.flatten(1).sum(1)


# ---- conservation ----------------------------------------------------------------------------

def test_lrp0_without_bias_conserves_the_logit_at_every_layer():
    model, x, target = small_cnn(), torch.rand(2, 3, 8, 8), torch.tensor([0, 2])
    logit = model(x).detach()[[0, 1], target]
    names = [None] + [name for name, _ in model.named_modules() if name]  # nested "3", "3.0", "3.1" too
    for name in names:
        R = lrp(model, x, target, rule="zero", layer=name)
        torch.testing.assert_close(total(R), logit, rtol=1e-5, atol=0, msg=f"not conserved at {name!r}")
    assert lrp(model, x, target, rule="zero").shape == x.shape
    assert lrp(model, x, target, rule="zero", layer="3.0").shape == (2, 5, 4, 4)


@pytest.mark.parametrize("rule, eps", [("zero", 0.0), ("epsilon", 0.25), ("epsilon", 1.0)])
@pytest.mark.parametrize("layer, before", [("3.0", "2"), ("6", "5")])
def test_bias_and_eps_absorb_exactly_their_share(rule, eps, layer, before):
    """sum_j R_j = sum_k (z_k - b_k) / (z_k + eps sign z_k) R_k: the bias's share b_k/z_k and the eps
    share are absorbed, nothing else."""
    model, x = small_cnn(bias=True), torch.rand(2, 3, 8, 8)
    kw = {"eps": eps} if rule == "epsilon" else {}
    R_out = lrp(model, x, 1, rule=rule, layer=layer, **kw)
    R_in = lrp(model, x, 1, rule=rule, layer=before, **kw)
    module = dict(model.named_modules())[layer]
    _, (z,) = minicam.forward_acts(model, x, [layer])
    b = module.bias.view(1, -1, 1, 1) if z.dim() == 4 else module.bias
    sign = torch.where(z >= 0, 1.0, -1.0)
    expected = total((z - b) / (z + eps * sign) * R_out)
    torch.testing.assert_close(total(R_in), expected, rtol=1e-8, atol=1e-12)
    absorbed = total(R_out) - expected
    assert absorbed.abs().min() > 1e-3 * total(R_out).abs().max()  # the test sees a real gap


def test_maxpool_is_winner_take_all():
    model, x = small_cnn(), torch.rand(2, 3, 8, 8)
    R = lrp(model, x, 0, rule="zero", layer="1")  # at the max-pool's input
    _, (acts,) = minicam.forward_acts(model, x, ["1"])
    _, idx = F.max_pool2d(acts, 2, return_indices=True)
    winners = torch.zeros_like(acts).flatten(2).scatter_(2, idx.flatten(2), 1.0).view_as(acts).bool()
    assert (R[~winners] == 0).all() and (R[winners] != 0).any()


# ---- each rule against an explicit-matrix implementation ---------------------------------------

def conv_matrix(weight, in_shape, **conv_args):
    """The conv as a matrix (out positions x in positions): the conv of every basis image."""
    d = torch.tensor(in_shape).prod().item()
    basis = torch.eye(d).view(d, *in_shape)
    return F.conv2d(basis, weight, **conv_args).reshape(d, -1).T


def explicit_rule(rule, a, M, b, R, eps=0.25, gamma=0.25, alpha=1.0, beta=0.0, low=0.0, high=1.0):
    """One image: a (D,), M (K, D), b (K,), R (K,) -> R_j, written straight from the formulas."""
    Mp, Mn = M.clamp(min=0), M.clamp(max=0)
    if rule in ("zero", "epsilon", "gamma"):
        if rule == "gamma":
            M, b = M + gamma * Mp, b + gamma * b.clamp(min=0)
        Z = a[None] * M  # z_kj = a_j w_jk
        z = Z.sum(1) + b
        if rule == "epsilon":
            z = z + eps * torch.where(z >= 0, 1.0, -1.0)
        return (Z / z[:, None] * R[:, None]).sum(0)
    if rule in ("zplus", "alpha_beta"):
        if rule == "zplus":
            alpha, beta = 1.0, 0.0
        Z = a[None] * M
        P, N = Z.clamp(min=0), Z.clamp(max=0)
        zp, zn = P.sum(1) + b.clamp(min=0), N.sum(1) + b.clamp(max=0)
        return ((alpha * P / zp[:, None] - beta * N / zn[:, None]) * R[:, None]).sum(0)
    if rule == "zb":
        Z = a[None] * M - low * Mp - high * Mn
        return (Z / Z.sum(1, keepdim=True) * R[:, None]).sum(0)
    raise AssertionError(rule)


CASES = [("zero", {}), ("epsilon", {"eps": 0.5}), ("gamma", {"gamma": 0.5}), ("zplus", {}),
         ("alpha_beta", {"alpha": 2.0, "beta": 1.0}), ("zb", {}), ("zb", {"bounds": (-1.0, 2.0)})]


def run_rule(rule, params, model, x, target, contrastive):
    start = {False: "logit", True: "survey"}.get(contrastive, contrastive)
    if rule == "zb":  # the single layer is the first layer
        return lrp(model, x, target, rule="zero", first_rule="zb", start=start, **params)
    return lrp(model, x, target, rule=rule, start=start, **params)


def check_against_matrix(rule, params, model, x, M, b, contrastive):
    target = torch.tensor([1, 4])
    R = run_rule(rule, params, model, x, target, contrastive)
    scores = model(x).detach()
    start = (contrastive_start(scores, target) if contrastive
             else torch.zeros_like(scores).scatter_(1, target[:, None], scores.gather(1, target[:, None])))
    kw = dict(params)
    if "bounds" in kw:
        kw["low"], kw["high"] = kw.pop("bounds")
    for i in range(len(x)):
        expected = explicit_rule(rule, x[i].flatten(), M, b, start[i], **kw)
        torch.testing.assert_close(R[i].flatten(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("contrastive", [False, True])
@pytest.mark.parametrize("rule, params", CASES)
def test_rule_on_a_linear_layer_matches_the_matrix_formula(rule, params, contrastive):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6)).eval()
    # Mixed-sign inputs test (a w)+ = a+ w+ + a- w-; z^B needs pixels inside its bounds.
    x = torch.rand(2, 3, 2, 2) if rule == "zb" else torch.randn(2, 3, 2, 2)
    check_against_matrix(rule, params, model, x, model[1].weight.detach(), model[1].bias.detach(), contrastive)


@pytest.mark.parametrize("rule, params", CASES)
def test_rule_on_a_conv_layer_matches_the_matrix_formula(rule, params):
    """Conv -> Flatten makes every output position a 'class', so the contrastive start gives every
    output relevance: the whole matrix is exercised, with stride and padding."""
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    model = nn.Sequential(conv, nn.Flatten()).eval()
    x = torch.rand(2, 2, 5, 5) if rule == "zb" else torch.randn(2, 2, 5, 5)
    M = conv_matrix(conv.weight.detach(), (2, 5, 5), stride=2, padding=1)
    b = conv.bias.detach().repeat_interleave(9)  # (channel, y, x) order of the flattened output
    check_against_matrix(rule, params, model, x, M, b, contrastive=True)


def test_first_rule_acts_on_the_first_layer_only():
    """Two layers, rule='epsilon' on the second and first_rule='zb' on the first: the result is the
    explicit epsilon formula followed by the explicit z^B formula."""
    torch.manual_seed(5)
    lin1, lin2 = nn.Linear(12, 6), nn.Linear(6, 3)
    model = nn.Sequential(nn.Flatten(), lin1, nn.ReLU(), lin2).eval()
    x = torch.rand(2, 3, 2, 2)
    target = torch.tensor([0, 2])
    R = lrp(model, x, target, rule="epsilon", first_rule="zb", eps=0.5)
    scores = model(x).detach()
    for i in range(2):
        a1 = torch.relu(lin1(x[i].flatten())).detach()
        start = torch.zeros(3)
        start[target[i]] = scores[i, target[i]]
        R_hidden = explicit_rule("epsilon", a1, lin2.weight.detach(), lin2.bias.detach(), start, eps=0.5)
        expected = explicit_rule("zb", x[i].flatten(), lin1.weight.detach(), lin1.bias.detach(), R_hidden)
        torch.testing.assert_close(R[i].flatten(), expected, rtol=1e-9, atol=1e-12)
    # ... and differs from using epsilon all the way down, so the test can tell the two apart.
    assert not torch.allclose(R, lrp(model, x, target, rule="epsilon", eps=0.5))


# ---- the start --------------------------------------------------------------------------------

def test_contrastive_starts():
    scores = torch.randn(3, 5)
    survey = contrastive_start(scores, [0, 3, 4])
    authors = contrastive_start(scores, [0, 3, 4], kind="authors")
    torch.testing.assert_close(survey.sum(1), torch.zeros(3), rtol=0, atol=1e-12)
    torch.testing.assert_close(authors.sum(1), torch.full((3,), 1 / 5), rtol=0, atol=1e-12)
    assert survey[1, 3] == 1 and survey[1, 0] == -1 / 4 and authors[1, 0] == -1 / 5
    with pytest.raises(ValueError, match="survey"):
        contrastive_start(scores, 0, kind="clrp")


def test_lrp_starts_from_the_right_relevance():
    model, x = small_cnn(), torch.rand(2, 3, 8, 8)
    scores = model(x).detach()
    torch.testing.assert_close(lrp(model, x, 1, layer="6", start="survey"), contrastive_start(scores, 1))
    # Contrastive LRP-0 on a bias-free net conserves the start's total: 0 (survey), 1/C (authors).
    torch.testing.assert_close(total(lrp(model, x, 1, rule="zero", start="survey")),
                               torch.zeros(2), rtol=0, atol=1e-12)
    torch.testing.assert_close(total(lrp(model, x, 1, rule="zero", start="authors")),
                               torch.full((2,), 1 / 3), rtol=1e-9, atol=0)


# ---- BatchNorm folding and the ResNet path ---------------------------------------------------

def random_batchnorm_stats(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)


def test_batchnorm_is_folded_into_the_conv_before_it():
    torch.manual_seed(3)
    conv, bn, fc = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 36, 2)
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.Flatten(), fc).eval()
    random_batchnorm_stats(model)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():  # written out here independently of minicam.lrp's folding
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
    reference = nn.Sequential(folded, nn.ReLU(), nn.Flatten(), fc).eval()
    x = torch.rand(2, 3, 6, 6)
    torch.testing.assert_close(lrp(model, x, 1), lrp(reference, x, 1))
    torch.testing.assert_close(lrp(model, x, 1, layer="1"), lrp(reference, x, 1, layer="0"))
    with pytest.raises(ValueError, match="folded"):
        lrp(model, x, 1, layer="0")


def small_resnet(seed=4):
    from minicam.models import ShapesResNet
    torch.manual_seed(seed)
    model = ShapesResNet(num_classes=3).double().eval()
    random_batchnorm_stats(model)
    return model


def test_resnet_conserves_through_residual_blocks():
    """With BN shifts and the fc bias at zero, LRP-0 is bias-free: the proportional split of each
    residual sum and the folded BNs must keep the logit at every block and at the input."""
    model = small_resnet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.bias.zero_()
        model.fc.bias.zero_()
    x, target = torch.rand(2, 3, 16, 16), torch.tensor([2, 0])
    logit = model(x).detach()[[0, 1], target]
    for name in (None, "bn1", "layer1", "layer2.0", "layer3", "layer4", "avgpool"):
        R = lrp(model, x, target, rule="zero", layer=name)
        torch.testing.assert_close(total(R), logit, rtol=1e-5, atol=0, msg=f"not conserved at {name!r}")
    # The block's two branches share the relevance at its sum.
    main = lrp(model, x, target, rule="zero", layer="layer2.0.bn2")
    skip = lrp(model, x, target, rule="zero", layer="layer2.0.downsample.1")
    torch.testing.assert_close(total(main) + total(skip), logit, rtol=1e-5, atol=0)
    assert (total(skip).abs() > 1e-4 * logit.abs()).all()  # the shortcut really carries relevance
    # ... in proportion to each branch's contribution to the sum: R_main = main / (main + skip) R_sum.
    R_sum = lrp(model, x, target, rule="zero", layer="layer2.0")  # the final ReLU passes R unchanged
    _, (a_main, a_skip) = minicam.forward_acts(model, x, ["layer2.0.bn2", "layer2.0.downsample.1"])
    torch.testing.assert_close(main, a_main / (a_main + a_skip) * R_sum)


def test_resnet_layer_choices_and_maps():
    model, x = small_resnet(), torch.rand(2, 3, 16, 16)
    assert lrp(model, x, 1, layer="layer1.0.bn1").shape == (2, 16, 16, 16)
    cams = relevance_cam(model, x, [0, 1], "layer2")
    assert cams.shape == (2, 8, 8) and torch.isfinite(cams).all()
    with pytest.raises(ValueError, match="runs twice"):
        lrp(model, x, 1, layer="layer1.0.relu")
    with pytest.raises(ValueError, match="folded"):
        lrp(model, x, 1, layer="conv1")


def test_bottleneck_resnets_are_refused():
    from torchvision.models.resnet import Bottleneck, ResNet
    model = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=2)
    with pytest.raises(NotImplementedError, match=r"Bottleneck at 'layer1\.0'"):
        lrp(model, torch.rand(1, 3, 32, 32), 0)


# ---- bad input and side effects ----------------------------------------------------------------

def test_unsupported_layers_are_named_with_their_place():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Sequential(nn.ReLU(), nn.Upsample(scale_factor=2)),
                          nn.Flatten(), nn.Linear(2 * 12 * 12, 2))
    with pytest.raises(NotImplementedError, match=r"nn\.Upsample at '1\.1'; supported: Conv2d"):
        lrp(model, torch.rand(1, 3, 8, 8), 0)
    with pytest.raises(NotImplementedError, match=r"BatchNorm2d at '0'"):
        lrp(nn.Sequential(nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2)), torch.rand(1, 3, 2, 2), 0)

    class TwoHeads(nn.Module):  # not a chain: refused by name before anything runs
        def forward(self, x):
            return x.mean(dim=(2, 3))

    with pytest.raises(NotImplementedError, match=r"TwoHeads at the top \(the model itself\); supported"):
        lrp(TwoHeads(), torch.rand(1, 3, 2, 2), 0)

    class Shifted(nn.Sequential):  # a forward that does more than run the layers in order
        def forward(self, x):
            return super().forward(x) + 1

    with pytest.raises(NotImplementedError, match="does not reproduce model"):
        lrp(Shifted(nn.Flatten(), nn.Linear(12, 2)), torch.rand(1, 3, 2, 2), 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "lrp0"}, "rule must be one of 'zero', 'epsilon'"),
    ({"rule": "zb"}, "first_rule='zb'"),
    ({"first_rule": "w2"}, "first_rule"),
    ({"rule": "alpha_beta", "alpha": 2.0, "beta": 0.5}, "alpha - beta = 1"),
    ({"rule": "epsilon", "epsilon": 0.1}, "unknown parameter 'epsilon'"),
    ({"rule": "zplus", "eps": 0.1}, "no effect"),
    ({"contrastive": "clrp"}, "unknown parameter 'contrastive'"),
])
def test_bad_arguments_say_what_would_be_right(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lrp(small_cnn(), torch.rand(1, 3, 8, 8), 0, **kwargs)


def test_model_state_is_restored_and_no_grad_is_fine():
    model, x = small_cnn(bias=True), torch.rand(2, 3, 8, 8)
    expected = lrp(model, x, 2, rule="epsilon")
    model.train()
    model[0].weight.requires_grad_(False)
    old_grad = torch.ones_like(model[6].weight)
    model[6].weight.grad = old_grad
    with torch.no_grad():
        got = lrp(model, x, 2, rule="epsilon")
        cams = relevance_cam(model, x, 2, "3")
    torch.testing.assert_close(got, expected)  # eval mode inside, whatever the caller's mode
    assert all(m.training for m in model.modules())
    assert not model[0].weight.requires_grad and model[3][0].weight.requires_grad
    assert model[6].weight.grad is old_grad and model[3][0].weight.grad is None
    assert not got.requires_grad and not cams.requires_grad


# ---- Relevance-CAM ----------------------------------------------------------------------------

def test_relevance_cam_is_the_relevance_weighted_sum_of_the_activations():
    model, x, target = small_cnn(bias=True), torch.rand(2, 3, 8, 8), [0, 2]
    cams = relevance_cam(model, x, target, "3")
    R = lrp(model, x, target, rule="zplus", layer="3", start="survey")
    _, (acts,) = minicam.forward_acts(model, x, ["3"])
    torch.testing.assert_close(cams, torch.einsum("nk,nkhw->nhw", R.mean(dim=(2, 3)), acts))
    assert cams.shape == (2, 4, 4) and torch.isfinite(cams).all()
    others = torch.stack([relevance_cam(model, x, t, "3") for t in range(3)])
    assert (others < 0).any() and (others > 0).any()  # no ReLU, as the authors' code
    with pytest.raises(ValueError, match=r"\(N, K, h, w\)"):
        relevance_cam(model, x, target, "5")


@pytest.mark.parametrize("name, layer", [("shapes_vgg", "relu2"), ("shapes_resnet", "layer2")])
def test_relevance_cam_on_the_shipped_models(name, layer):
    from minicam.models import load_pretrained
    model = load_pretrained(name)   # a missing weight file fails
    from minicam.data import make_shapes
    x = make_shapes(4, seed=1000).images
    cams = relevance_cam(model, x, [0, 1, 2, 3], layer)
    assert cams.shape[0] == 4 and torch.isfinite(cams).all() and (cams.flatten(1).std(1) > 0).all()


# ---- start=, the plan and the walk -------------------------------------------------------------

def test_start_names_the_start_and_the_older_contrastive_is_gone():
    model, x = small_cnn(bias=True), torch.rand(2, 3, 8, 8)
    scores = model(x).detach()
    torch.testing.assert_close(lrp(model, x, 1, start="survey", layer="6"), contrastive_start(scores, 1, "survey"))
    torch.testing.assert_close(lrp(model, x, 1, start="authors", layer="6"), contrastive_start(scores, 1, "authors"))
    assert not torch.allclose(lrp(model, x, 1, start="survey"), lrp(model, x, 1, start="authors"))
    with pytest.raises(ValueError, match="start must be 'logit'"):
        lrp(model, x, 1, start="clrp")
    with pytest.raises(ValueError, match="unknown parameter 'contrastive'"):
        lrp(model, x, 1, start="survey", contrastive=True)


def test_the_plan_is_immutable_and_chooses_each_rule_once():
    from dataclasses import FrozenInstanceError
    from minicam.lrp import plan, rule_zb, rule_zplus
    steps = plan(small_cnn(), rule="zplus", first_rule="zb", bounds=(-1.0, 1.0))
    rules = [s.rule for s in steps if s.rule is not None]
    assert len(rules) == 3 and rules[0].func is rule_zb and rules[0].keywords == {"bounds": (-1.0, 1.0)}
    assert rules[1] is rule_zplus and rules[2] is rule_zplus
    assert isinstance(steps, tuple) and [s.name for s in steps][:4] == ["0", "1", "2", "3.0"]
    with pytest.raises(FrozenInstanceError):
        steps[0].rule = rule_zplus


def test_the_walk_is_lazy():
    from minicam.lrp import _forward, plan, walk
    model, x = small_cnn(), torch.rand(1, 3, 8, 8)
    steps = plan(model, rule="zero")
    scores, records = _forward(steps, x)
    relevances = walk(steps, records, torch.zeros_like(scores).index_fill_(1, torch.tensor([0]), 1.0))
    step, R = next(relevances)
    assert step.name == "6" and R.shape == (1, 3)              # the last layer first, nothing computed yet
    names = [step.name] + [s.name for s, _ in relevances]
    assert names == ["6", "5", "4", "3.1", "3.0", "2", "1", "0"]


# ---- issue 12: inference mode, dtypes, non-finite values, reused modules, empty batches ----------

def test_inside_inference_mode_lrp_and_relevance_cam_compute_as_outside():
    """LRP needs autograd: inside torch.inference_mode() the call leaves it (no autograd error, no
    zeros); an x made under inference mode works inside and outside; the modes are as they were."""
    model, x = small_cnn(bias=True), torch.rand(2, 3, 8, 8)
    expected, expected_cam = lrp(model, x, [0, 2]), relevance_cam(model, x, [0, 2], "3")
    with torch.inference_mode():
        x_inference = x.clone()
        got, cam = lrp(model, x, [0, 2]), relevance_cam(model, x_inference, [0, 2], "3")
        got_inference = lrp(model, x_inference, [0, 2], layer="3")
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(cam, expected_cam, rtol=0, atol=0)
    torch.testing.assert_close(got_inference, lrp(model, x, [0, 2], layer="3"), rtol=0, atol=0)
    torch.testing.assert_close(lrp(model, x_inference, [0, 2]), expected, rtol=0, atol=0)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    with torch.no_grad():
        lrp(model, x, 0)
        assert not torch.is_grad_enabled()


class PlusOne(nn.Sequential):
    """A forward that does more than run its layers in order: the chain cannot reproduce it."""
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models_are_explained_to_their_precision(dtype):
    """float16/bfloat16 round the chain (BatchNorm folded, bias added apart) and model(x) differently:
    the self-check allows that (a tolerance in units of torch.finfo(dtype).eps) and still refuses a
    forward that does more. The map matches the float64 one to a few tens of eps (relative L2)."""
    eps = torch.finfo(dtype).eps
    cases = ((small_resnet(), torch.rand(2, 3, 16, 16), "layer2"), (small_cnn(bias=True), torch.rand(2, 3, 8, 8), "3"))
    for model, x, layer in cases:
        expected = lrp(model, x, [1, 2], rule="epsilon")
        half = copy.deepcopy(model).to(dtype)
        got = lrp(half, x.to(dtype), [1, 2], rule="epsilon")
        assert got.dtype == dtype and (got.double() - expected).norm() <= 32 * eps * expected.norm()
        assert torch.isfinite(relevance_cam(half, x.to(dtype), [1, 2], layer)).all()
    with pytest.raises(NotImplementedError, match="does not reproduce model"):
        lrp(PlusOne(*small_cnn(bias=True)).to(dtype), x.to(dtype), 0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_refused_naming_x(value):
    x = torch.rand(3, 3, 8, 8)
    x[1, 0, 2, 3] = value
    with pytest.raises(ValueError, match=r"x holds 1 NaN or inf value"):
        lrp(small_cnn(), x, 0)
    with pytest.raises(ValueError, match=r"x holds 1 NaN or inf value"):
        relevance_cam(small_cnn(), x, 0, "3")


def test_scores_that_overflow_are_an_error_not_a_nan_map():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2, bias=False))
    with torch.no_grad():
        model[1].weight.fill_(1e308)
    with pytest.raises(ValueError, match="class scores holds .* NaN or inf"):
        lrp(model, torch.ones(1, 3, 2, 2), 0, rule="zero")


def test_a_module_used_twice_is_walked_at_each_place():
    """A Sequential may hold one module at several places (named_children lists it once): each place
    is a step, so the map equals that of a model with a copy at each place; the reused module itself
    has no single output, and choosing it as the layer says so."""
    torch.manual_seed(6)
    relu, conv = nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
    shared = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), relu, conv, relu, conv, relu,
                           nn.Flatten(), nn.Linear(4 * 16, 3)).eval()
    separate = nn.Sequential(*[copy.deepcopy(m) for m in shared]).eval()
    x, target = torch.rand(2, 3, 4, 4), [0, 2]
    torch.testing.assert_close(shared(x), separate(x), rtol=0, atol=0)  # the copies compute the same
    for kwargs in ({"rule": "zero"}, {"rule": "gamma"}, {"rule": "epsilon", "layer": "0"}):
        torch.testing.assert_close(lrp(shared, x, target, **kwargs), lrp(separate, x, target, **kwargs))
    with pytest.raises(ValueError, match="one module that the model holds at 3 places"):
        lrp(shared, x, 0, layer=relu)
    with pytest.raises(ValueError, match="holds at 2 places"):
        relevance_cam(shared, x, 0, "2")


def test_an_empty_batch_gives_an_empty_map():
    model, x = small_cnn(bias=True), torch.rand(0, 3, 8, 8)
    assert lrp(model, x, 0).shape == (0, 3, 8, 8)
    assert lrp(model, x, [], layer="3.0", rule="zplus").shape == (0, 5, 4, 4)
    assert relevance_cam(model, x, 0, "3").shape == (0, 4, 4)
    assert relevance_cam(small_resnet(), torch.rand(0, 3, 16, 16), 1, "layer2").shape == (0, 8, 8)


# ---- issue 12: arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"rule": "epsilon", "eps": float("nan")}, ValueError, "eps must be a finite number >= 0"),
    ({"rule": "epsilon", "eps": -0.1}, ValueError, "eps must be a finite number >= 0"),
    ({"rule": "gamma", "gamma": float("inf")}, ValueError, "gamma must be a finite number >= 0"),
    ({"rule": "epsilon", "eps": "0.1"}, TypeError, "eps must be a finite number >= 0, e.g. eps=0.25"),
    ({"rule": "epsilon", "eps": True}, TypeError, "eps must be a finite number"),
    ({"rule": "alpha_beta", "alpha": float("nan"), "beta": 1.0}, ValueError, "alpha must be a finite number"),
    ({"first_rule": "zb", "bounds": (1.0, 0.0)}, ValueError, "low <= high"),
    ({"first_rule": "zb", "bounds": (0.0, float("inf"))}, ValueError, r"bounds must be \(low, high\), the finite range"),
    ({"first_rule": "zb", "bounds": (float("nan"), 1.0)}, ValueError, r"bounds must be \(low, high\), the finite range"),
    ({"first_rule": "zb", "bounds": 1.0}, TypeError, r"bounds must be \(low, high\)"),
    ({"first_rule": "zb", "bounds": (0.0, 0.5, 1.0)}, ValueError, r"bounds must be \(low, high\)"),
    ({"first_rule": "zb", "bounds": ("0", "1")}, TypeError, "bounds must be .* numbers or tensors"),
])
def test_rule_parameters_must_be_finite_numbers_in_range(kwargs, error, match):
    with pytest.raises(error, match=match):
        lrp(small_cnn(), torch.rand(1, 3, 8, 8), 0, **kwargs)


def test_bounds_may_be_tensors_per_channel():
    model, x = small_cnn(), torch.rand(2, 3, 8, 8)
    scalar = lrp(model, x, 1, rule="zero", first_rule="zb", bounds=(-1.0, 2.0))
    per_channel = lrp(model, x, 1, rule="zero", first_rule="zb",
                      bounds=(torch.full((3, 1, 1), -1.0), np.full((3, 1, 1), 2.0)))
    torch.testing.assert_close(per_channel, scalar, rtol=0, atol=0)
    with pytest.raises(ValueError, match="low <= high"):
        lrp(model, x, 1, first_rule="zb", bounds=(torch.zeros(3, 1, 1), torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1)))


def test_relevance_cam_without_a_layer_says_it_needs_one():
    with pytest.raises(TypeError, match="layer must be the name of a conv layer.*got None"):
        relevance_cam(small_cnn(), torch.rand(1, 3, 8, 8), 0, None)


def test_numpy_integers_are_targets():
    model, x = small_cnn(bias=True), torch.rand(2, 3, 8, 8)
    expected = lrp(model, x, [1, 2])
    for target in ([np.int64(1), np.int64(2)], (np.int32(1), 2), np.array([1, 2])):
        torch.testing.assert_close(lrp(model, x, target), expected, rtol=0, atol=0)
    torch.testing.assert_close(lrp(model, x, np.int64(2)), lrp(model, x, 2), rtol=0, atol=0)
    torch.testing.assert_close(relevance_cam(model, x, np.uint8(2), "3"), relevance_cam(model, x, 2, "3"),
                               rtol=0, atol=0)
    with pytest.raises(TypeError, match="target"):
        lrp(model, x, np.float64(1.0))
    with pytest.raises(ValueError, match="target 3 is out of range"):
        lrp(model, x, np.array([0, 3]))


# ---- issue 12: torchvision's VGG --------------------------------------------------------------

def tiny_vgg(bias=True, seed=7):
    """torchvision's VGG class, whose forward is features -> avgpool (AdaptiveAvgPool2d(7)) ->
    torch.flatten -> classifier, with small features and a classifier of the stock layout (Linear,
    ReLU, Dropout, Linear, ReLU, Dropout, Linear) but 16 wide (the stock one has 120M weights). On
    32x32 images the features give 6 x 8 x 8, which the avgpool turns into 7 x 7 with overlapping
    2 x 2 windows."""
    from torchvision.models.vgg import VGG
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.ReLU(True), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3, padding=1, bias=bias), nn.ReLU(True), nn.MaxPool2d(2))
    with torch.device("meta"):  # the stock classifier, replaced below, is never allocated
        model = VGG(features, num_classes=3, init_weights=False)
    model.classifier = nn.Sequential(nn.Linear(6 * 49, 16, bias=bias), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(16, 16, bias=bias), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(16, 3, bias=bias))
    return model.eval()


def test_torchvision_vgg_conserves_the_logit_at_every_layer():
    model, x, target = tiny_vgg(bias=False), torch.rand(2, 3, 32, 32), torch.tensor([2, 0])
    logit = model(x).detach()[[0, 1], target]
    model.train()  # dropout: lrp runs the model in eval mode, where it is the identity
    for name in (None, "features.0", "features.2", "features.4", "features", "avgpool", "classifier.0",
                 "classifier.2", "classifier.5"):
        R = lrp(model, x, target, rule="zero", layer=name)
        torch.testing.assert_close(total(R), logit, rtol=1e-5, atol=0, msg=f"not conserved at {name!r}")
    assert model.training
    assert lrp(model, x, target, layer="avgpool").shape == (2, 6, 7, 7)
    assert relevance_cam(model, x, target, "features.4").shape == (2, 16, 16)


def test_torchvision_vgg_avgpool_and_flatten_match_the_matrix_formula():
    """AdaptiveAvgPool2d(7) on 8 x 8 is a linear layer with weight 1/4 on each of its overlapping
    2 x 2 windows: the relevance at its input is the LRP-0 formula with that matrix (a window whose
    inputs are all 0 has z = 0 and no relevance). torch.flatten hands the first Linear's input
    relevance back in (channel, y, x) order: the epsilon formula with its weight matrix."""
    model, x, target = tiny_vgg(), torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    kw = {"rule": "epsilon", "eps": 0.5}
    R_fc = lrp(model, x, target, layer="classifier.0", **kw)
    R_pooled = lrp(model, x, target, layer="avgpool", **kw)
    R_features = lrp(model, x, target, layer="features", **kw)
    _, (a_features, a_pooled) = minicam.forward_acts(model, x, ["features", "avgpool"])
    basis = torch.eye(6 * 64).view(-1, 6, 8, 8)
    P = F.adaptive_avg_pool2d(basis, 7).reshape(6 * 64, -1).T  # (6*49 outputs, 6*64 inputs)
    assert (P.sum(0) > 0.25).any(), "the windows overlap"
    fc = model.classifier[0]
    for i in range(2):
        expected = explicit_rule("epsilon", a_pooled[i].flatten(), fc.weight.detach(), fc.bias.detach(), R_fc[i],
                                 eps=0.5)
        torch.testing.assert_close(R_pooled[i].flatten(), expected, rtol=1e-9, atol=1e-12)
        a, R = a_features[i].flatten(), R_pooled[i].flatten()
        live = P @ a != 0
        assert (R[~live] == 0).all() and live.sum() > len(live) / 2
        expected = explicit_rule("zero", a, P[live], torch.zeros(int(live.sum())), R[live])
        torch.testing.assert_close(R_features[i].flatten(), expected, rtol=1e-9, atol=1e-12)


def test_relevance_cam_on_torchvision_vgg11():
    """The README's claim, on the stock model: vgg11 with random weights (nothing downloaded) on
    64 x 64 images, where the adaptive avgpool makes 7 x 7 out of 2 x 2 (the tiny VGG above checks
    the numbers; this checks the stock layout runs through, with Relevance-CAM's defaults)."""
    from torchvision.models import vgg11
    torch.set_default_dtype(torch.float32)  # 130M weights; the fixture restores the default
    torch.manual_seed(8)
    model, x = vgg11(num_classes=10, init_weights=False).eval(), torch.rand(2, 3, 64, 64)
    cams = relevance_cam(model, x, [3, 7], "features.19")
    assert cams.shape == (2, 4, 4) and torch.isfinite(cams).all() and (cams.flatten(1).std(1) > 0).all()
