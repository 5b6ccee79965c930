"""minicam.sanity: the randomisation really randomises (and only what it should), the model passed in is
left exactly as it was, a map compared with itself scores 1, and rank correlations, SSIM and the verdict
agree with hand-worked numbers and with scipy and scikit-image called directly."""
import io
from collections import OrderedDict

import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from torch import nn

from minicam import sanity
from minicam.models import ShapesVGG, shapes_resnet
from tiny_models import all_hooks


def conv_net():
    """conv1-bn1-relu1-conv2-relu2-gap-flatten-fc on 3 channels, 3 classes, trained-looking (non-default)
    weights and BN statistics, in training mode with a .grad set, so that any change to it would show."""
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 4, 3, padding=1), bn1=nn.BatchNorm2d(4), relu1=nn.ReLU(),
        conv2=nn.Conv2d(4, 5, 3, padding=1), relu2=nn.ReLU(), gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        fc=nn.Linear(5, 3)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model.bn1.running_mean.uniform_(-1, 1)
        model.bn1.running_var.uniform_(0.5, 2)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    return model.train()


def state_bytes(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def same(a, b):
    return torch.equal(a, b)


X = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
TARGET = torch.tensor([0, 2, 1])


# ---- randomising ----------------------------------------------------------------------------------

def test_cascade_layers_go_from_the_output_to_the_input():
    assert sanity.cascade_layers(conv_net()) == ["fc", "conv2", "bn1", "conv1"]
    assert sanity.cascade_layers(ShapesVGG()) == ["fc", "conv6", "conv5", "conv4", "conv3", "conv2", "conv1"]
    assert sanity.cascade_layers(shapes_resnet()) == ["fc", "layer4", "layer3", "layer2", "layer1", "bn1", "conv1"]


def test_randomized_changes_exactly_the_named_layers_of_a_copy():
    model = conv_net()
    before, modes, rng = state_bytes(model), [m.training for m in model.modules()], torch.get_rng_state()
    twin = sanity.randomized(model, ["fc", "bn1"], seed=3)
    assert twin is not model
    assert state_bytes(model) == before and [m.training for m in model.modules()] == modes
    assert same(model.fc.weight.grad, torch.ones_like(model.fc.weight)) and all_hooks(model) == 0
    assert same(torch.get_rng_state(), rng)          # the caller's random stream is not consumed
    trained, random = model.state_dict(), twin.state_dict()
    for key in trained:
        changed = not same(trained[key], random[key])
        assert changed == key.startswith(("fc.", "bn1.")) or key == "bn1.num_batches_tracked", key
    # a BatchNorm goes back to its start: the identity up to eps
    assert same(twin.bn1.weight, torch.ones(4)) and same(twin.bn1.running_var, torch.ones(4))
    assert same(twin.bn1.running_mean, torch.zeros(4)) and same(twin.bn1.bias, torch.zeros(4))


def test_randomized_is_seeded_per_layer():
    model = conv_net()
    a = sanity.randomized(model, ["fc"], seed=3)
    b = sanity.randomized(model, ["conv2", "fc"], seed=3)    # another set of layers: fc's weights the same
    c = sanity.randomized(model, ["fc"], seed=4)
    assert same(a.fc.weight, b.fc.weight) and same(a.fc.bias, b.fc.bias)
    assert not same(a.fc.weight, c.fc.weight)
    assert not same(b.conv2.weight, model.conv2.weight)
    assert same(sanity.randomized(model, [model.fc], seed=3).fc.weight, a.fc.weight)   # a module as the layer


def test_the_cascade_randomises_one_more_layer_at_each_step_and_keeps_the_model():
    model = conv_net()
    before = state_bytes(model)
    steps = sanity.cascade(model, seed=0)
    assert [name for name, _ in steps] == ["fc", "conv2", "bn1", "conv1"]
    trained = dict(model.named_parameters())
    for k, (_, randomised) in enumerate(steps):
        params = dict(randomised.named_parameters())
        for key, p in params.items():
            layer = key.split(".")[0]
            top = [name for name, _ in steps[:k + 1]]
            assert same(p, trained[key]) == (layer not in top), (k, key)   # differs exactly above the cut
        if k:   # the layers randomised before keep their random weights
            for key, p in dict(steps[k - 1][1].named_parameters()).items():
                if key.split(".")[0] in [name for name, _ in steps[:k]]:
                    assert same(params[key], p)
    assert state_bytes(model) == before
    assert all(not same(a.fc.weight, model.fc.weight) for _, a in steps)


def test_randomizing_a_resnet_block_reaches_every_layer_inside_it():
    torch.manual_seed(0)
    model = shapes_resnet().eval()
    with torch.no_grad():   # move every weight and statistic away from its initial value, as training does
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            t.add_(torch.rand_like(t) + 0.5)
    twin = sanity.randomized(model, ["layer4"], seed=0)
    trained, random = model.state_dict(), twin.state_dict()
    inside = [key for key in trained if key.startswith("layer4.") and "num_batches" not in key]
    assert len(inside) == 15   # 3 convs (two 3x3, the 1x1 shortcut; no bias) + 3 BNs x (weight, bias, mean, var)
    assert all(not same(trained[k], random[k]) for k in inside)
    assert all(same(trained[k], random[k]) for k in trained if not k.startswith("layer4."))


@pytest.mark.parametrize("layers, error, match", [
    (["relu1"], ValueError, "holds no parameters"),
    (["fc", "fc"], ValueError, "each layer once"),
    ("fc", TypeError, "non-empty list"),
    ([], TypeError, "non-empty list"),
    (["fcc"], ValueError, "not found"),
])
def test_randomized_checks_the_layers(layers, error, match):
    with pytest.raises(error, match=match):
        sanity.randomized(conv_net(), layers)


def test_a_parameter_no_reset_reaches_is_refused():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x) * self.scale
    model = nn.Sequential(OrderedDict(head=Scaled()))
    with pytest.raises(ValueError, match=r"\['scale'\].*reset_parameters"):
        sanity.randomized(model, ["head"])


# ---- comparing maps -------------------------------------------------------------------------------

def test_a_map_compared_with_itself_scores_one():
    maps = torch.rand(4, 2, 8, 8, generator=torch.Generator().manual_seed(1)) - 0.5
    maps = torch.stack([maps[0, 0], maps[1, 0], maps[2, 0].relu(), maps[3, 0]])   # one with many ties (zeros)
    sim = sanity.compare_maps(maps, maps, 8)
    for values in (sim.spearman, sim.spearman_abs, sim.ssim):
        torch.testing.assert_close(values, torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)
    assert not sim.constant.any()


def test_rank_correlation_by_hand_and_against_scipy():
    # the order reversed: rho = -1; the values are >= 0, so |map| is reversed too
    big_a = torch.arange(16.0).view(1, 4, 4)
    big_b = 15 - big_a
    sim = sanity.compare_maps(big_a, big_b, 4)
    assert sim.spearman.item() == pytest.approx(-1, abs=1e-12)
    assert sim.spearman_abs.item() == pytest.approx(-1, abs=1e-12)
    # signs matter only without abs: -map has rho -1 but the same |map|
    signed = torch.arange(16.0).view(1, 4, 4) - 7.5
    sim = sanity.compare_maps(signed, -signed, 4)
    assert sim.spearman.item() == pytest.approx(-1, abs=1e-12)
    assert sim.spearman_abs.item() == pytest.approx(1, abs=1e-12)
    # with ties (mean ranks): A's ranks 5/2 x4, 11/2 x2, 7, 8, 9 and B's 5/2 x4, 5, 13/2 x2, 8, 9 give
    # sum of centred products 179/4 and both sums of squares 109/2, so rho = (179/4) / (109/2) = 179/218
    a = torch.tensor([[[0.0, 0, 1], [0, 2, 3], [0, 1, 4]]])
    b = torch.tensor([[[1.0, 0, 0], [0, 3, 2], [0, 2, 4]]])
    assert sanity.compare_maps(a, b, 3).spearman.item() == pytest.approx(179 / 218, abs=1e-12)
    # ties and random maps: scipy.stats.spearmanr on the flattened maps
    g = torch.Generator().manual_seed(2)
    p, q = (torch.rand(3, 5, 5, generator=g) - 0.3).relu(), torch.rand(3, 5, 5, generator=g) - 0.5
    sim = sanity.compare_maps(p, q, 5)
    for i in range(3):
        u, v = p[i].flatten().double().numpy(), q[i].flatten().double().numpy()
        assert sim.spearman[i].item() == pytest.approx(stats.spearmanr(u, v).statistic, abs=1e-12)
        assert sim.spearman_abs[i].item() == pytest.approx(stats.spearmanr(abs(u), abs(v)).statistic, abs=1e-12)
        pu, pv = (t / t.max() for t in (abs(u) - abs(u).min(), abs(v) - abs(v).min()))
        assert sim.ssim[i].item() == pytest.approx(
            structural_similarity(pu.reshape(5, 5), pv.reshape(5, 5), data_range=1.0, win_size=5), abs=1e-12)


def test_a_constant_map_has_no_rank_correlation_and_is_counted():
    maps = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(3))
    other = maps.clone()
    other[1] = 0.0          # constant
    other[2] = -0.25        # constant, negative
    sim = sanity.compare_maps(maps, other, 6)
    assert sim.constant.tolist() == [False, True, True]
    assert sim.spearman[1:].isnan().all() and sim.spearman_abs[1:].isnan().all()
    assert sim.spearman[0].item() == pytest.approx(1, abs=1e-12)
    assert not sim.ssim.isnan().any()     # SSIM is defined for a constant picture
    # |map| constant while the map is not: +-1 everywhere orders nothing by magnitude
    sign = torch.where(torch.arange(36).view(1, 6, 6) % 2 == 0, 1.0, -1.0)
    sim = sanity.compare_maps(sign, maps[:1], 6)
    assert sim.constant.tolist() == [True] and sim.spearman_abs.isnan().all() and not sim.spearman.isnan().any()


def test_pixel_maps_sum_channels_and_upsample():
    rgb = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(sanity.pixel_maps(rgb, 8), rgb.double().sum(1))
    small = torch.rand(2, 2, 2)
    up = sanity.pixel_maps(small, (8, 8))
    assert up.shape == (2, 8, 8) and up.dtype == torch.float64
    from minicam import upsample
    torch.testing.assert_close(up, upsample(small.double(), 8))
    with pytest.raises(ValueError, match="^maps with channels"):
        sanity.pixel_maps(rgb, 4)
    with pytest.raises(ValueError, match="^other must hold"):
        sanity.compare_maps(small, torch.rand(3, 2, 2), 8)


# ---- the tests on models ---------------------------------------------------------------------------

METHODS = ["saliency", "Grad-CAM", "guided backprop", "CAM"]


def test_cascading_randomization_records_every_step_and_keeps_the_model():
    model = conv_net()
    before, modes = state_bytes(model), [m.training for m in model.modules()]
    rec = sanity.cascading_randomization(model, X, TARGET, METHODS, layer="relu2", seed=0)
    assert state_bytes(model) == before and [m.training for m in model.modules()] == modes
    assert same(model.fc.weight.grad, torch.ones_like(model.fc.weight)) and all_hooks(model) == 0
    assert rec.steps == ["fc", "conv2", "bn1", "conv1"]
    from minicam.methods import METHODS as REGISTRY
    for name in METHODS:
        assert len(rec.maps[name]) == 5 and len(rec.similarity[name]) == 4
        torch.testing.assert_close(rec.maps[name][0], sanity.pixel_maps(REGISTRY[name](model, X, TARGET, "relu2"), 8))
        # each step's maps are the method's maps on that step's randomised copy, compared with the first
        for k, (_, randomised) in enumerate(sanity.cascade(model, seed=0)):
            again = sanity.pixel_maps(REGISTRY[name](randomised, X, TARGET, "relu2"), 8)
            torch.testing.assert_close(rec.maps[name][k + 1], again)
            expected = sanity.compare_maps(rec.maps[name][0], again, 8)
            torch.testing.assert_close(rec.similarity[name][k].spearman_abs, expected.spearman_abs, equal_nan=True)


def test_the_maps_change_once_the_weights_are_random():
    # the weights decide the maps: at full randomisation no method keeps its order of the pixels
    rec = sanity.cascading_randomization(conv_net(), X, TARGET, ["saliency", "Grad-CAM"], layer="relu2")
    for name in ("saliency", "Grad-CAM"):
        last = rec.similarity[name][-1]
        assert bool((last.spearman_abs.nan_to_num(0) < 0.99).all()), name


def test_data_randomization_of_a_model_against_itself_is_one():
    model = conv_net()
    from minicam.methods import METHODS as REGISTRY
    rec = sanity.data_randomization(model, model, X, TARGET, {"saliency": REGISTRY["saliency"]})
    assert rec.steps == ["control"]
    sim = rec.similarity["saliency"][0]
    torch.testing.assert_close(sim.spearman_abs, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(sim.ssim, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="^methods: "):
        sanity.data_randomization(model, model, X, TARGET, ["gradcam"])


def test_compare_models_matches_the_last_step_of_the_cascade():
    # the fully randomised copy is the cascade's last step: the same weights, so the same comparison
    model = conv_net()
    full = sanity.randomized(model, sanity.cascade_layers(model), seed=0)
    rec = sanity.compare_models(model, {"all random": full, "itself": model}, X, TARGET, ["saliency"], "relu2")
    last = sanity.cascading_randomization(model, X, TARGET, ["saliency"], "relu2").similarity["saliency"][-1]
    assert rec.steps == ["all random", "itself"]
    torch.testing.assert_close(rec.similarity["saliency"][0].spearman_abs, last.spearman_abs, rtol=0, atol=0)
    torch.testing.assert_close(rec.similarity["saliency"][1].spearman, torch.ones(3, dtype=torch.float64),
                               rtol=0, atol=1e-12)


# ---- the verdict -----------------------------------------------------------------------------------

def test_randomization_verdict_by_threshold_and_interval():
    low = torch.tensor([0.1, -0.2, 0.15, 0.05, -0.1, 0.2], dtype=torch.float64)
    v = sanity.randomization_verdict(low)
    assert v.verdict == "passes" and v.mean == pytest.approx(0.8 / 6) and v.used == 6 and v.constant == 0
    assert v.low <= v.mean <= v.high <= 0.5
    assert sanity.randomization_verdict(torch.full((6,), 0.9)).verdict == "fails"
    assert sanity.randomization_verdict(torch.tensor([0.1, 0.9, 0.2, 0.8, 0.05, 0.95])).verdict == "unclear"
    with_constant = sanity.randomization_verdict(torch.tensor([0.1, float("nan"), 0.2]), images=[0, 1, 1])
    assert (with_constant.used, with_constant.constant) == (2, 1)
    assert with_constant.mean == pytest.approx(0.15)
    assert sanity.randomization_verdict(torch.full((3,), float("nan"))).verdict == "no ranks"
    assert "mean |rho| 0.13" in str(v)


@pytest.mark.parametrize("kwargs, name", [
    (dict(rho=torch.tensor([1.5])), "rho"),
    (dict(rho=torch.rand(2, 2)), "rho"),
    (dict(threshold=1.0), "threshold"),
    (dict(images=[0.0, 1.0]), "images"),
])
def test_randomization_verdict_checks_its_arguments(kwargs, name):
    args = dict(rho=torch.tensor([0.1, 0.2])) | kwargs
    with pytest.raises(ValueError, match=f"^{name} "):
        sanity.randomization_verdict(**args)
