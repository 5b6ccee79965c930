"""The explorer shows exactly what the direct minicam calls give, at every position of its controls,
leaves the model as it was, and refuses bad input with a clear ValueError."""
import random
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

import minicam
from minicam.suite.widgets import METHODS, Explorer, default_layers, explorer

from minicam.lrp import relevance_cam
from tiny_models import Functional


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def small_images(n=3, size=16):
    torch.manual_seed(1)
    return torch.rand(n, 3, size, size)



def direct(model, x, method, layer, target):
    """The direct minicam call for one image x (1, C, H, W), batch dimension dropped."""
    calls = {
        "Grad-CAM": lambda: minicam.gradcam(model, x, target, layer),
        "Grad-CAM (counterfactual)": lambda: minicam.gradcam(model, x, target, layer, counterfactual=True),
        "Grad-CAM++": lambda: minicam.gradcam_pp(model, x, target, layer),
        "CAM": lambda: minicam.cam(model, x, target, layer, fc=last_linear(model)),
        "Guided Grad-CAM": lambda: minicam.guided_gradcam(model, x, target, layer),
        "Relevance-CAM": lambda: relevance_cam(model, x, target, layer),
        "saliency": lambda: minicam.saliency(model, x, target),
        "guided backprop": lambda: minicam.guided_backprop(model, x, target),
    }
    return calls[method]()[0]


def last_linear(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def recording(ex):
    """Let the explorer hand its figure what it would draw, recorded instead of drawn: the list of
    (index, raw, message, png) of every render. The figure draws exactly what it is handed (its own
    tests, tests/test_explorer_figure.py); every method is drawn for real in test_model_is_left_as_it_was."""
    drawn = []

    def render(index, raw, message=None, error=False):
        drawn.append((index, raw, message, b"\x89PNG render %d" % len(drawn)))
        return drawn[-1][3]
    ex.figure.render = render
    return drawn


def check_position(ex, model, method, layer, target, index, drawn=None):
    """The explorer's state after its controls were moved to this position; with `drawn` (see
    `recording`), also that the picture is the figure's drawing of exactly that map or message."""
    assert ex.error is None, f"{method} at {layer}, class {target}: {ex.error!r}"
    assert (ex.method_menu.value, ex.class_menu.value, ex.image_slider.value) == (method, target, index)
    if drawn is not None:
        assert drawn[-1][0] == index and drawn[-1][1] is ex.current_map and drawn[-1][2] == ex.message
        assert ex.png == ex.picture.value == drawn[-1][3]
    x = ex.images[index:index + 1]
    try:
        expected = direct(model, x, method, layer, target)
    except (ValueError, NotImplementedError) as e:  # not defined here: the explorer must say so, not draw
        assert ex.current_map is None and ex.message, f"{method} at {layer}: direct call raised {e}"
        return "message"
    assert ex.message is None, ex.message
    assert_close(ex.current_map, expected)
    return "map"


def sweep(ex, model, index, order=1, drawn=None):
    """Move the controls (by setting .value, as a user would) over every layer x class x method."""
    ex.image_slider.value = index
    seen = []
    for method in ex.methods[::order]:
        ex.method_menu.value = method
        for layer in ex.layers[::order]:
            ex.layer_slider.value = layer
            for target in range(len(ex.class_names))[::order]:
                ex.class_menu.value = target
                seen.append(check_position(ex, model, method, layer, target, index, drawn))
    return seen


def test_every_position_shows_the_direct_call_small_model():
    """Every (method, layer, class) position of one image, reached by moving the controls as a user
    does, shows the direct minicam call's map -- twice, the second time from the cache in the reverse
    order, so a cache key missing the class, layer, method or image would show a stale map; the
    picture is the figure's drawing of that very map (see `recording`)."""
    model, images = small_model(), small_images()
    ex = explorer(model, images, class_names=["a", "b", "c"]).explorer
    drawn = recording(ex)
    assert ex.layers == ["1", "4"]  # the two ReLUs, in forward order
    assert set(ex.methods) == set(METHODS)
    seen = sweep(ex, model, index=1, drawn=drawn)
    seen += sweep(ex, model, index=1, order=-1, drawn=drawn)  # again, from the cache, in another order
    assert seen.count("message") == 2 * 1 * 3  # CAM at layer "1", each class, both sweeps
    assert seen.count("map") == len(seen) - seen.count("message")
    # another image: the class labels follow that image's scores, and its maps are its own
    ex.image_slider.value = 2
    assert [label for label, _ in ex.class_menu.options] == [
        f"{name} ({score:.2f})" for name, score in zip("abc", model(images[2:3])[0].tolist())]
    check_position(ex, model, ex.method_menu.value, ex.layer_slider.value, ex.class_menu.value, 2, drawn)
    assert sweep(ex, model, index=2, drawn=drawn).count("message") == 3


def test_every_position_shows_the_direct_call_shapes_vgg():
    """The shipped model on held-out images: every method at each of its six layers (one class), every
    class for every method at the CAM layer relu6, every image, and eight random joint
    positions, each reached by moving the controls, show the direct call's map (CAM only at relu6).
    The joint (method, layer, class) grid of the explorer's own code is covered in full by the small
    model's test: the code path is the same for every model, and this model's 192 positions would
    cost half a minute."""
    from minicam import data, models
    model = models.load_pretrained("shapes_vgg")   # a missing weight file fails
    images = data.make_shapes(2, seed=1000).images
    ex = Explorer(model, images, class_names=data.CLASSES)
    drawn = recording(ex)
    assert ex.layers == [f"relu{i}" for i in range(1, 7)]
    positions = [(m, layer, 1, 1) for m in ex.methods for layer in ex.layers]
    positions += [(m, "relu6", c, 1) for m in ex.methods for c in range(4)]
    rng = random.Random(0)
    positions += [(rng.choice(ex.methods), rng.choice(ex.layers), rng.randrange(4), rng.randrange(2))
                  for _ in range(8)]
    for method, layer, target, index in positions:
        for control, value in ((ex.image_slider, index), (ex.method_menu, method), (ex.layer_slider, layer),
                               (ex.class_menu, target)):
            control.value = value
        seen = check_position(ex, model, method, layer, target, index, drawn)
        assert (seen == "message") == (method == "CAM" and layer != "relu6"), (method, layer)
    assert {index for _, _, _, index in positions} == {0, 1}


def test_show_moves_the_controls_and_returns_the_map():
    model, images = small_model(), small_images()
    ex = Explorer(model, images)
    shown = ex.show(layer="1", target=2, method="Grad-CAM++", index=0)
    assert (ex.layer_slider.value, ex.class_menu.value, ex.method_menu.value, ex.image_slider.value) == \
        ("1", 2, "Grad-CAM++", 0)
    assert_close(shown, minicam.gradcam_pp(model, images[:1], 2, "1")[0])
    assert shown.shape == (16, 16)
    ex.show(index=2)  # another image: the class stays, its labels follow the image's scores
    assert ex.class_menu.value == 2 and ex.class_menu.label == f"class 2 ({model(images[2:3])[0, 2]:.2f})"


def test_picture_changes_with_the_setting_and_says_when_a_method_does_not_apply():
    model, images = small_model(), small_images()
    ex = Explorer(model, images)
    before = ex.png
    assert before.startswith(b"\x89PNG") and ex.picture.value == before
    ex.class_menu.value = (ex.class_menu.value + 1) % 3
    assert ex.png != before
    ex.show(method="CAM", layer="1")
    assert ex.current_map is None and "CAM needs conv -> global average pooling" in ex.message and "'1'" in ex.message
    ex.layer_slider.value = "4"
    assert ex.message is None and ex.current_map.shape == (8, 8)
    # Only the changing parts are redrawn on saved backgrounds: the same setting gives the same picture.
    again = ex.png
    for index, method in ((2, "saliency"), (1, "CAM"), (1, "guided backprop"), (0, "CAM")):
        ex.show(index=index, method=method)
    assert ex.png == again
    ex.show(method="CAM", layer="1")
    assert ex.png != again


def test_layer_slider_is_disabled_for_input_level_methods():
    ex = Explorer(small_model(), small_images())
    for method in METHODS:
        ex.method_menu.value = method
        assert ex.layer_slider.disabled == (method in ("saliency", "guided backprop"))


def test_errors_in_a_redraw_are_shown_not_raised(monkeypatch):
    ex = Explorer(small_model(), small_images())

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(ex, "compute", broken)
    ex.class_menu.value = (ex.class_menu.value + 1) % 3  # a callback: ipywidgets would swallow the error
    assert isinstance(ex.error, RuntimeError) and "boom" in ex.status.value
    monkeypatch.undo()
    ex.render()
    assert ex.error is None and ex.status.value == "" and ex.current_map is not None


def test_model_is_left_as_it_was():
    model, images = small_model(), small_images()
    model.train()
    model[7].weight.grad = torch.ones_like(model[7].weight)
    flags = [p.requires_grad for p in model.parameters()]
    ex = Explorer(model, images)
    for method in METHODS:
        ex.show(method=method)
        assert ex.error is None
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert torch.equal(model[7].weight.grad, torch.ones_like(model[7].weight))
    assert all(p.grad is None for p in model.parameters() if p is not model[7].weight)
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks), m


def test_default_layers():
    assert default_layers(small_model(), small_images()) == ["1", "4"]

    assert default_layers(Functional(), small_images()) == ["a", "b"]  # no ReLU modules: the convs
    from minicam import models
    resnet = models.ShapesResNet()
    # the blocks' ReLU runs twice and cannot be the layer; the stem's runs once
    assert default_layers(resnet, small_images(size=32)) == ["relu", "layer1", "layer2", "layer3", "layer4"]


def test_probabilities_sigmoid_or_softmax():
    model, images = small_model(), small_images()
    scores = model(images)
    assert_close(Explorer(model, images).probs, torch.sigmoid(scores))
    ex = Explorer(model, images, prob="softmax")
    assert_close(ex.probs, torch.softmax(scores, dim=1))
    assert "softmax" in ex.predictions.value and "softmax" in ex.header.value


def test_methods_and_layers_can_be_chosen():
    model, images = small_model(), small_images()
    ex = Explorer(model, images, layers=[model[4], "1"], methods=["saliency", "Grad-CAM"])
    assert ex.layers == ["1", "4"] and ex.methods == ["saliency", "Grad-CAM"]
    assert list(ex.method_menu.options) == ["saliency", "Grad-CAM"]


@pytest.mark.parametrize("kwargs, message", [
    ({"images": torch.rand(3, 16, 16)}, "4-D"),
    ({"images": torch.rand(2, 2, 16, 16)}, "C = 1 or 3"),
    ({"layers": ["conv9"]}, "layer 'conv9' not found"),
    ({"layers": ["7"]}, "does not output"),
    ({"layers": []}, "layers is empty"),
    ({"class_names": ["a", "b"]}, "class_names has 2 names but the model gives 3"),
    ({"methods": ["Grad-CAM", "gradcam"]}, r"unknown methods \['gradcam'\]"),
    ({"prob": "relu"}, "prob must be one of"),
])
def test_bad_input_is_a_clear_value_error(kwargs, message):
    args = {"images": small_images(), **kwargs}
    with pytest.raises(ValueError, match=message):
        Explorer(small_model(), **args)


def test_a_layer_that_runs_twice_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu, nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="runs 2 times"):
        Explorer(model, small_images(), layers=["1"])


def test_maps_are_computed_in_the_chosen_threads_and_the_setting_is_restored(monkeypatch):
    torch.set_num_threads(2)
    ex = Explorer(small_model(), small_images(), threads=1)
    compute, seen = ex.compute, []
    monkeypatch.setattr(ex, "compute", lambda *args: seen.append(torch.get_num_threads()) or compute(*args))
    ex.show(method="saliency")
    assert seen == [1] and torch.get_num_threads() == 2 and ex.error is None


def test_methods_a_model_does_not_support_get_a_message():
    model, images = Functional(), small_images()
    with pytest.raises(NotImplementedError):
        relevance_cam(model, images[:1], 0, "b")
    ex = Explorer(model, images)
    for method in ex.methods:
        ex.show(method=method)
        assert check_position(ex, model, method, "b", ex.class_menu.value, 0) == (
            "message" if method in ("CAM", "Relevance-CAM", "guided backprop", "Guided Grad-CAM") else "map")
    ex.show(method="Grad-CAM")
    assert ex.message is None  # cleared once a map is shown again
    ex.show(method="Relevance-CAM")
    assert ex.message.startswith("Relevance-CAM at 'b' is not available for this model: ")


def test_colour_bar_labels_span_the_raw_map():
    ex = Explorer(small_model(), small_images())
    for method in ("Grad-CAM", "saliency", "guided backprop"):
        raw = ex.show(method=method, layer="4")
        scale = ex.figure.bar_scale.get_text()
        factor = 10 ** int(scale[3:]) if scale else 1  # "×1e-5" -> 1e-5
        labels = [float(label.get_text()) * factor for label in ex.figure.tick_labels]
        low, high = (-raw.abs().max(), raw.abs().max()) if raw.dim() == 3 else (raw.min(), raw.max())
        assert_close(torch.tensor([labels[0], labels[-1]]), torch.stack([low, high]).float(), rtol=5e-3, atol=0)


def test_top_predictions_list_logits_and_probabilities_best_first():
    model, images = small_model(), small_images()
    ex = Explorer(model, images, class_names=["a", "b", "c"])
    ex.show(index=1, target=0)
    rows = re.findall(r"<tr style='font-weight:(\w+)'>(.*?)</tr>", ex.predictions.value)[1:]  # after the heading
    cells = [re.findall(r">([^<>]*)</td>", row) for _, row in rows]
    scores = model(images[1:2])[0]
    order = scores.argsort(descending=True).tolist()
    assert [c[0] for c in cells] == ["abc"[k] for k in order]
    assert [c[1:] for c in cells] == [[f"{scores[k]:.2f}", f"{torch.sigmoid(scores[k]):.3f}"] for k in order]
    assert [weight for weight, _ in rows] == ["bold" if k == 0 else "normal" for k in order]


# ---- issue 12: a model's own error, strings for lists, a model by name, numpy indices ---------------

class BrokenForOneImage(nn.Sequential):
    """small_model's layers, but the forward pass on a single image raises the model's own ValueError
    (as a bug in a model would) while `broken` is set; the explorer computes its maps image by image."""
    broken = True

    def forward(self, x):
        if self.broken and len(x) == 1:
            raise ValueError("a bug in the model")
        return super().forward(x)


def test_a_model_error_is_an_error_in_the_picture_not_a_notice_and_not_cached():
    """Defect 9: only the method's own NotApplicable is a notice ("not available"); a ValueError of the
    model is `error`: shown in red below the picture and, in place of the map, in the picture itself
    (no stale map of the previous setting), and not cached, so it goes once the model is fixed."""
    model = BrokenForOneImage(*small_model())
    model.broken = False
    ex = Explorer(model, small_images())
    drawn = recording(ex)
    good = ex.show(method="Grad-CAM", layer="4", target=0)
    assert good is not None and ex.error is None
    model.broken = True
    for method in ex.methods:
        assert ex.show(method=method, target=1, index=2) is None  # image 2: nothing of it is cached yet
        assert isinstance(ex.error, ValueError) and ex.message is None, method
        assert "a bug in the model" in ex.status.value and "ValueError" in ex.status.value
        index, raw, message, png = drawn[-1]
        assert raw is None and "ValueError: a bug in the model" in message and ex.png == png
        assert "not available" not in message and method in ex.header.value
    assert not any(isinstance(v, Exception) for v in ex._cache.values())
    model.broken = False
    for method in ex.methods:
        ex.show(method=method)
        assert check_position(ex, model, method, "4", 1, 2, drawn) in ("map", "message")
        assert ex.error is None


def test_an_error_is_drawn_in_the_picture_in_an_error_box():
    model = BrokenForOneImage(*small_model())
    model.broken = False
    ex = Explorer(model, small_images())
    before = ex.png
    model.broken = True
    ex.image_slider.value = 1  # an image not computed yet (another class of image 0 would come from the cache)
    assert ex.error is not None and ex.png != before
    assert ex.figure._message.get_bbox_patch().get_edgecolor()[:3] != (0.8, 0.6, 0.0)  # not the notice's colours


def test_one_string_is_one_layer_or_method_and_class_names_must_be_a_list():
    """Defect 10: layers="4" and methods="Grad-CAM" are lists of one (they were read letter by letter);
    class_names="abc" is refused, naming class_names (one name per letter would be a silent mislabel)."""
    model, images = small_model(), small_images()
    ex = Explorer(model, images, layers="4", methods="Grad-CAM")
    assert ex.layers == ["4"] and ex.methods == ["Grad-CAM"]
    assert_close(ex.current_map, minicam.gradcam(model, images[:1], ex.class_menu.value, "4")[0])
    assert explorer(model, images, layers=model[4], methods=("saliency",)).explorer.layers == ["4"]
    with pytest.raises(TypeError, match="class_names must be a list with one name per class"):
        Explorer(model, images, class_names="abc")
    assert Explorer(model, images, class_names=("a", "b", "c")).class_names == ["a", "b", "c"]


def test_a_shipped_model_by_name_and_numpy_indices():
    """Defect 11: explorer("shapes_vgg", x) loads the shipped model of that name; an unknown name lists
    the names; numpy integers work as the image and class indices of show() and compute()."""
    from minicam import models
    vgg = models.load_pretrained("shapes_vgg")   # a missing weight file fails
    images = small_images(n=2, size=32)
    ex = explorer("shapes_vgg", images, layers="relu6", methods=["Grad-CAM"]).explorer
    assert isinstance(ex.model, models.ShapesVGG)
    assert_close(ex.show(index=np.int64(1), target=np.int64(2)), minicam.gradcam(vgg, images[1:2], 2, "relu6")[0])
    assert (ex.image_slider.value, ex.class_menu.value) == (1, 2) and type(ex.image_slider.value) is int
    assert_close(ex.compute("Grad-CAM", "relu6", np.int32(3), np.int64(0)), minicam.gradcam(vgg, images[:1], 3, "relu6")[0])
    with pytest.raises(ValueError, match=r"'shapes_vg' is not a shipped model.*'shapes_vgg', 'shapes_resnet'"):
        explorer("shapes_vg", images)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"index": 3}, IndexError, r"index must be an image index in 0\.\.2"),
    ({"index": 1.0}, ValueError, "index must be"),
    ({"target": 3}, ValueError, r"target must be a class index in 0\.\.2"),
    ({"target": True}, TypeError, "target must be"),
    ({"method": "gradcam"}, ValueError, "method must be one of the explorer's methods"),
    ({"layer": "9"}, ValueError, r"layer must be one of the explorer's layers \['1', '4'\]"),
    ({"layer": "3", "index": 2}, ValueError, "layer must be one of"),
])
def test_a_bad_position_is_refused_before_any_control_moves(kwargs, error, message):
    ex = Explorer(small_model(), small_images())
    ex.show(index=1, target=0, method="Grad-CAM++", layer="1")
    before, png = [c.value for c in (ex.image_slider, ex.class_menu, ex.method_menu, ex.layer_slider)], ex.png
    with pytest.raises(error, match=message):
        ex.show(**kwargs)
    assert [c.value for c in (ex.image_slider, ex.class_menu, ex.method_menu, ex.layer_slider)] == before
    assert ex.png == png and ex.error is None


def test_bad_arguments_are_refused_before_the_model_runs(monkeypatch):
    """Rule (b): the checks that need no forward pass come first."""
    import minicam.suite.widgets
    monkeypatch.setattr(minicam.suite.widgets, "trace", lambda *a: pytest.fail("the model ran before the check"))
    for kwargs in ({"class_names": "abc"}, {"methods": ["gradcam"]}, {"prob": "relu"}, {"threads": 0},
                   {"images": small_images().double() * float("nan")}):
        with pytest.raises((TypeError, ValueError)):
            Explorer(small_model(), **{"images": small_images(), **kwargs})


# ---- issue 14: switching class costs no forward pass ----------------------------------------------------

def counting_forward_passes(model):
    calls = []
    return calls, model.register_forward_hook(lambda *_: calls.append(1))


def test_switching_class_costs_no_forward_pass():
    """Each method's maps of every class come from the first pass at an image and layer: moving the class
    menu afterwards runs the model not once. (That the maps are the direct calls' is checked at every
    position by the sweeps above, which go through the same cache.)"""
    model, images = small_model(), small_images()
    ex = Explorer(model, images)
    recording(ex)  # nothing drawn: only the passes are counted
    calls, handle = counting_forward_passes(model)
    try:
        for method in ex.methods:
            ex.show(method=method, layer="4", index=1, target=0)   # each method's first pass at this image
        first = len(calls)
        assert 0 < first <= 2 * len(ex.methods)   # Guided Grad-CAM: Grad-CAM's pass and guided backprop's
        shown = {(method, target): ex.show(method=method, target=target)
                 for method in ex.methods for target in (1, 2, 0)}
        assert len(calls) == first   # every class, every method: no pass
        ex.show(layer="1", method="Grad-CAM")   # another layer: one pass, for every class of it
        ex.show(target=2)
        assert len(calls) == first + 1
    finally:
        handle.remove()
    assert ex.error is None and all(raw is not None for raw in shown.values())
    assert_close(shown["Grad-CAM++", 2], minicam.gradcam_pp(model, images[1:2], 2, "4")[0])


def test_a_class_outside_the_top_ones_costs_one_pass_and_is_cached():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 12))
    images = small_images(n=1)
    ex = Explorer(model, images, methods=["Grad-CAM", "Grad-CAM++"])
    recording(ex)
    ranked = model(images)[0].argsort(descending=True).tolist()
    assert ex.top[0] == tuple(sorted(ranked[:8]))
    calls, handle = counting_forward_passes(model)
    try:
        for target in ranked[:8]:       # the best eight: from the pass of the first render, at construction
            ex.show(target=target, method="Grad-CAM")
        assert len(calls) == 0
        low = ranked[-1]
        shown = [ex.show(target=low, method=method) for method in ("Grad-CAM++", "Grad-CAM", "Grad-CAM++")]
        assert len(calls) == 1          # one of the others: its own pass, once
    finally:
        handle.remove()
    assert_close(shown[0], minicam.gradcam_pp(model, images, low, "1")[0])
    assert_close(shown[1], minicam.gradcam(model, images, low, "1")[0])
