import socket

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import ResNet

import minicam
from minicam.data import CLASSES, CUE_CLASS, cue_mask, make_shapes
from minicam.models import (CONTROLS, PRETRAINED, SHIPPED, ShapesResNet, ShapesVGG, fold_batchnorm,
                            load_pretrained, shapes_resnet, weights_path)
from minicam.apps.train import accuracy, main, majority_rate

# training uses data seeds 0 .. epochs-1 (see minicam.apps.train); these are held out
TEST_SEED = 1001
LAST_CONV = {"shapes_vgg": "relu6", "shapes_resnet": "layer4", "shapes_vgg_biased": "relu6"}
CUE = CLASSES.index(CUE_CLASS)


@pytest.fixture(scope="module")
def models():
    return {name: load_pretrained(name) for name in PRETRAINED}


# 200 held-out images (about 390 image-class pairs): every bar below holds on them with the same margin
# as on the 500 images of the README's figures (measured: accuracy 99.3 / 97.9 % per label, pointing
# 94.6 / 99.5 %), at a fraction of the time the image generator takes for 500.
SAMPLE = 200


@pytest.fixture(scope="module")
def held_out():
    return make_shapes(SAMPLE, seed=TEST_SEED)


@pytest.fixture(scope="module")
def cue_agrees():
    """Held-out images drawn as in training: the cue present exactly when a CUE_CLASS shape is."""
    return make_shapes(SAMPLE, seed=TEST_SEED, bias="train")


# --- architecture -------------------------------------------------------------------

def test_vgg_layout():
    model = ShapesVGG()
    names = [n for n, _ in model.named_modules()][1:]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "conv3", "relu3", "pool2",
                     "conv4", "relu4", "conv5", "relu5", "conv6", "relu6", "gap", "flatten", "fc"]
    assert all(not m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    acts = {}
    model.relu6.register_forward_hook(lambda m, i, o: acts.update(relu6=o))
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 4)
    assert acts["relu6"].shape == (2, 64, 16, 16)
    assert isinstance(model.fc, nn.Linear) and isinstance(model.gap, nn.AdaptiveAvgPool2d)
    with pytest.raises(ValueError, match="at least 5 conv widths"):
        ShapesVGG(widths=(8, 8, 8, 8))


def test_resnet_is_a_torchvision_resnet():
    model = shapes_resnet()
    assert isinstance(model, ShapesResNet) and isinstance(model, ResNet)
    assert isinstance(model.maxpool, nn.Identity) and model.conv1.stride == (1, 1)
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[0].conv1.out_channels, model.layer4[0].conv1.out_channels] == [16, 32, 64, 128]
    assert all(len(getattr(model, f"layer{i}")) == 1 for i in range(1, 5))
    acts = {}
    model.layer4.register_forward_hook(lambda m, i, o: acts.update(layer4=o))
    assert model.eval()(torch.rand(2, 3, 64, 64)).shape == (2, 4)
    assert acts["layer4"].shape == (2, 128, 8, 8)


def test_fold_batchnorm_is_exact():
    torch.manual_seed(0)
    model = ShapesVGG(batchnorm=True)
    model.train()(torch.rand(32, 3, 64, 64))  # give BN non-trivial running statistics
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 2.0)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    model.eval()
    plain = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), rtol=1e-4, atol=1e-5)


# --- shipped weights -----------------------------------------------------------------

def test_load_pretrained_needs_no_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_pretrained tried to open a socket")
    monkeypatch.setattr(socket, "socket", no_network)
    assert set(PRETRAINED) < set(SHIPPED) and set(CONTROLS) < set(SHIPPED)
    for name in SHIPPED:
        model = load_pretrained(name)
        assert not any(m.training for m in model.modules()), name
        assert isinstance(model, ResNet if name == "shapes_resnet" else ShapesVGG)
        assert weights_path(name).stat().st_size < 5e6


def test_unknown_model_name():
    with pytest.raises(ValueError) as err:
        load_pretrained("resnet50")
    assert "resnet50" in str(err.value)
    assert all(name in str(err.value) for name in PRETRAINED)


@pytest.mark.parametrize("name", ["resnet50", None, ["shapes_vgg"], "Shapes_VGG"])
@pytest.mark.parametrize("function", [load_pretrained, weights_path, minicam.models.create_model])
def test_a_name_that_is_not_a_shipped_model_names_the_argument_and_the_choices(function, name):
    with pytest.raises(ValueError) as err:
        function(name)
    assert f"unknown model {name!r}: name must be one of the shipped models" in str(err.value)
    assert all(repr(shipped) in str(err.value) for shipped in SHIPPED)


@pytest.mark.parametrize("name", ["shapes_vgg", "shapes_resnet"])
def test_accuracy_on_held_out_images(models, held_out, name):
    per_label, exact, per_class = accuracy(models[name], held_out.images, held_out.labels)
    classes = ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, per_class.tolist()))
    print(f"\n{name}: per-label {per_label:.1%}, exact-match {exact:.1%} ({classes})")
    assert per_label >= 0.97
    assert exact >= 0.90


def test_the_shuffled_label_model_is_at_chance_and_the_others_are_not(models, held_out):
    # Adebayo et al.'s data randomisation needs a model that learned the labels' frequencies and nothing
    # about the images: per label, it can do no better than always answering the label's majority value
    majority = majority_rate(held_out.labels)
    print(f"\nmajority-label rate on {len(held_out)} held-out images (seed {TEST_SEED}): "
          + ", ".join(f"{c} {r:.1%}" for c, r in zip(CLASSES, majority.tolist())))
    shuffled = load_pretrained("shapes_vgg_shuffled")
    # (the biased model is left out: on images without its cue it misses circles by design, see 03b)
    for name, model in [("shapes_vgg_shuffled", shuffled)] + [(n, models[n]) for n in ("shapes_vgg", "shapes_resnet")]:
        per_label, _, per_class = accuracy(model, held_out.images, held_out.labels)
        classes = ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, per_class.tolist()))
        print(f"{name}: per-label {per_label:.1%} ({classes})")
        if name == "shapes_vgg_shuffled":
            assert bool((per_class.double() <= majority + 0.03).all())    # chance, up to sampling luck
            assert bool((per_class.double() >= majority - 0.10).all())    # ... and not worse than a coin either
        else:
            assert bool((per_class.double() >= majority + 0.3).all())


def pointing_game(model, batch, layer, tolerances):
    """Pointing game (Zhang et al. 2016) over all (image, present class) pairs.

    For each tolerance t: (share of pairs whose upsampled Grad-CAM peak lies within t px, in x
    and y, of that class's mask; share a uniformly random peak would reach). Also the pair count.
    """
    img, cls = torch.nonzero(batch.labels, as_tuple=True)
    maps = minicam.upsample(minicam.gradcam(model, batch.images[img], cls, layer), batch.images.shape[-1])
    peak = maps.flatten(1).argmax(1)
    scores = []
    for t in tolerances:
        masks = batch.masks[img, cls].float()[:, None]
        masks = F.max_pool2d(masks, 2 * t + 1, stride=1, padding=t).flatten(1)  # dilate by t px
        scores.append((masks[torch.arange(len(peak)), peak].mean().item(), masks.mean().item()))
    return scores, len(peak)


# Zhang et al. count a hit within 15 px of the object on ~224 px images; scaled to 64 px that is 4.
# The tolerance matters: the last conv maps are 16x16 and 8x8, so the upsampled peak sits on a
# cell centre, and the most class-evident cells are often those on the object's outline.
TOLERANCE = 4


@pytest.mark.parametrize("name", ["shapes_vgg", "shapes_resnet"])
def test_gradcam_points_at_the_right_shapes(models, held_out, name):
    layer = LAST_CONV[name]
    [(hits, chance), (strict, strict_chance)], pairs = pointing_game(models[name], held_out, layer, [TOLERANCE, 0])
    print(f"\n{name}: Grad-CAM at {layer} points at the class ({pairs} pairs): {hits:.1%} within "
          f"{TOLERANCE} px (random peak {chance:.1%}), {strict:.1%} strictly inside (random {strict_chance:.1%})")
    assert hits >= 0.85
    assert chance < 0.35  # the tolerance leaves most of the image a miss
    assert strict > 4 * strict_chance


def cue_share(model, batch, layer):
    """Mean share of the Grad-CAM mass (target CUE_CLASS) that falls on the cue patch."""
    maps = minicam.upsample(minicam.gradcam(model, batch.images, CUE, layer), batch.images.shape[-1])
    maps = maps.clamp(min=0)  # bilinear upsampling of a ReLU'd map stays >= 0; be explicit
    on_cue = maps[:, cue_mask(batch.images.shape[-1])].sum(1)
    return (on_cue / maps.flatten(1).sum(1).clamp(min=1e-12)).mean().item()


def test_biased_model_takes_the_shortcut(models, cue_agrees):
    biased = models["shapes_vgg_biased"]
    agree = cue_agrees
    flip = make_shapes(SAMPLE, seed=TEST_SEED, bias="flip")
    acc_agree = accuracy(biased, agree.images, agree.labels)[2][CUE].item()
    acc_flip = accuracy(biased, flip.images, flip.labels)[2][CUE].item()
    clean = accuracy(models["shapes_vgg"], flip.images, flip.labels)[2][CUE].item()
    print(f"\n{CUE_CLASS!r} accuracy: biased model {acc_agree:.1%} when the cue agrees, "
          f"{acc_flip:.1%} when flipped; unbiased model {clean:.1%} on the flipped images")
    assert acc_agree >= 0.9
    assert acc_flip < acc_agree - 0.20
    assert clean >= 0.95  # the flipped images are not harder in themselves


def test_biased_gradcam_sits_on_the_cue(models, cue_agrees):
    # training-style images that carry the cue (so they also hold a CUE_CLASS shape): the biased
    # model's evidence for CUE_CLASS is partly the cue, the unbiased model's is the shape alone.
    # (On images with the cue but no CUE_CLASS shape, the unbiased model's weak map also drifts to
    # the white patch, the most CUE_CLASS-like thing there: compare maps of a present class.)
    batch = cue_agrees[cue_agrees.cue]
    area = cue_mask(64).float().mean().item()
    biased = cue_share(models["shapes_vgg_biased"], batch, "relu6")
    clean = cue_share(models["shapes_vgg"], batch, "relu6")
    print(f"\nGrad-CAM mass on the cue ({len(batch)} images with the cue, target {CUE_CLASS!r}): "
          f"biased model {biased:.2%}, unbiased model {clean:.2%}, cue area {area:.2%} of the image")
    assert biased > 3 * area
    assert biased > 4 * clean


# --- training -----------------------------------------------------------------------

def test_training_is_seeded(tmp_path, capsys):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    for out in (a, b):
        main(["shapes_vgg", "--epochs", "1", "--images", "64", "--out", str(out), "--report", "50"])
    assert "held-out" in capsys.readouterr().out
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert sa.keys() == ShapesVGG().state_dict().keys()  # batch norm folded away
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(SystemExit):
        main(["--all", "--out", str(a)])


def test_fold_bn_is_conv_then_batchnorm_in_one():
    from minicam.lrp import fold_bn
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3)
    for bn in (nn.BatchNorm2d(4), nn.BatchNorm2d(4, affine=False)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        if bn.affine:
            nn.init.uniform_(bn.weight, 0.5, 2.0)
            nn.init.uniform_(bn.bias, -0.5, 0.5)
        bn.eval()
        w, b = fold_bn(conv.weight, conv.bias, bn)
        x = torch.rand(2, 3, 6, 6)
        with torch.no_grad():
            torch.testing.assert_close(F.conv2d(x, w, b), bn(conv(x)), rtol=1e-5, atol=1e-6)
        assert not w.requires_grad and not b.requires_grad
