"""`minicam evaluate` (minicam.apps.evaluate) and its pieces: the maps are the direct minicam calls, the
scores are minicam.metrics' numbers, and the table is what the rows say."""
import csv
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

import pytest
import torch
from torch import nn

import minicam
from minicam import metrics, models
from minicam.apps import evaluate
from minicam.checks import NotApplicable
from minicam.lrp import relevance_cam


def gap_model(classes=4):
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 4, 3, padding=1), relu1=nn.ReLU(), pool=nn.MaxPool2d(4),
        conv2=nn.Conv2d(4, 5, 3, padding=1), relu2=nn.ReLU(),
        gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(5, classes))).eval()


@pytest.fixture(scope="module")
def pairs():
    return evaluate.held_out_pairs(6, seed=1000)


def test_held_out_pairs_are_every_present_class(pairs):
    data = minicam.data.make_shapes(6, seed=1000)
    assert len(pairs["classes"]) == int(data.labels.sum()) == len(pairs["boxes"]) == len(pairs["images"])
    for box, c in zip(pairs["boxes"], pairs["classes"]):
        assert len(box) >= 1 and box.shape[1] == 4


def test_method_maps_are_the_direct_calls():
    model, x, t = gap_model(), torch.rand(3, 3, 16, 16), torch.tensor([0, 3, 1])
    maps = evaluate.method_maps(model, x, t, "relu2")
    assert list(maps) == list(evaluate.EVALUATED)
    torch.testing.assert_close(maps["Grad-CAM"], minicam.gradcam(model, x, t, "relu2"), rtol=0, atol=0)
    torch.testing.assert_close(maps["Grad-CAM++"], minicam.gradcam_pp(model, x, t, "relu2"), rtol=0, atol=0)
    torch.testing.assert_close(maps["CAM"], minicam.cam(model, x, t, "relu2", "fc"), rtol=0, atol=0)
    torch.testing.assert_close(maps["Relevance-CAM"], relevance_cam(model, x, t, "relu2"), rtol=0, atol=0)
    shallow = evaluate.method_maps(model, x, t, "relu1")
    assert isinstance(shallow["CAM"], NotApplicable) and shallow["Grad-CAM"].shape == (3, 16, 16)


def test_in_batches_concatenates_and_keeps_the_first_error():
    x = torch.arange(7.0)
    got = evaluate.in_batches(lambda t: {"double": 2 * t, "first": t[:1]}, 3, x)
    assert torch.equal(got["double"], 2 * x) and got["first"].tolist() == [0.0, 3.0, 6.0]
    err = NotApplicable("no")
    got = evaluate.in_batches(lambda t: {"m": err if t[0] == 3 else t}, 3, x)
    assert got["m"] is err


def test_score_row_is_minicam_metrics_on_the_pairs(pairs):
    model = gap_model()
    x, cls, masks, boxes = pairs["images"], pairs["classes"], pairs["masks"], pairs["boxes"]
    raw = minicam.gradcam(model, x, cls, "relu2")
    Y = metrics.target_probs(model, x, cls, "sigmoid")
    row = evaluate.score_row(model, x, cls, masks, boxes, raw, Y, batch_size=4)
    O = metrics.target_probs(model, metrics.explanation_map(raw, x), cls, "sigmoid")
    maps = minicam.upsample(raw, x.shape[-2:])
    own = masks[torch.arange(len(cls)), cls]
    assert row["pairs"] == len(cls)
    assert row["avg_drop"] == pytest.approx(metrics.average_drop(Y, O))
    assert row["incr_conf"] == pytest.approx(metrics.increase_in_confidence(Y, O))
    assert row["loc_0.5"] == pytest.approx(sum(metrics.loc(m, b, 0.5) for m, b in zip(maps, boxes)) / len(cls))
    assert row["pointing"] == pytest.approx(100 * metrics.pointing_game(maps, own).double().mean().item())
    assert row["miou"] == pytest.approx(metrics.mask_iou(maps, own, evaluate.MASK_DELTA).mean().item())
    assert row["off_target"] == pytest.approx(metrics.off_target(maps, masks, cls).mean().item())
    ious = [metrics.iou(metrics.box_from_map(m, evaluate.BOX_FRACTION), b).max().item() for m, b in zip(maps, boxes)]
    assert row["box_iou"] == pytest.approx(sum(ious) / len(ious))


def test_rows_at_one_layer(pairs):
    model, notes = gap_model(), []
    Y = metrics.target_probs(model, pairs["images"], pairs["classes"], "sigmoid")
    rows = evaluate.rows_at(model, "m", "relu1", pairs, Y, 100, notes)
    assert [r["method"] for r in rows] == ["Grad-CAM", "Grad-CAM++", "Relevance-CAM"]  # CAM: silently left out
    assert rows[0]["win_vs_gradcam"] == 50 and notes == []
    assert all(set(r) == {key for key, _, _ in evaluate.COLUMNS} for r in rows)
    assert [r["method"] for r in evaluate.rows_at(model, "m", "relu2", pairs, Y, 100, notes)][2] == "CAM"


def test_table_report_and_csv(tmp_path):
    row = {key: 0 for key, _, _ in evaluate.COLUMNS}
    row.update(model="shapes_vgg", layer="relu6", method="CAM", pairs=3, avg_drop=1.234, loc_0=0.5)
    table = evaluate.to_markdown([row]).splitlines()
    assert table[0].startswith("| model | layer | method | pairs | Avg Drop % ↓") and table[1].startswith("|---|---|---|---:|")
    assert table[2].startswith("| shapes_vgg | relu6 | CAM | 3 | 1.23 | 0.00 | 0.00 | 0.500 |")
    text = evaluate.report([row], ["a note"], n=5, seed=1000)
    assert text.startswith("# minicam evaluation: 5 held-out shapes images (seed 1000), 3 (image, class) pairs")
    assert text.endswith("- a note\n")
    evaluate.write_csv([row], tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().splitlines()[0] == ",".join(key for key, _, _ in evaluate.COLUMNS)


def test_evaluate_on_a_shipped_model_and_a_misspelt_layer():
    rows, notes = evaluate.evaluate(["shapes_vgg"], n=4, layers=["relu6"], progress=False)
    assert [r["method"] for r in rows] == list(evaluate.EVALUATED) and notes == []
    with pytest.raises(ValueError, match="in model 'shapes_vgg': layer 'relu9' not found"):
        evaluate.evaluate(["shapes_vgg"], n=4, layers=["relu9"], progress=False)


# ---- minicam evaluate --------------------------------------------------------------

def test_evaluate_smoke(tmp_path):
    """The shipped weights, as the README's table is made (a missing weight file fails this test)."""
    assert evaluate.main(["--n", "4", "--models", "shapes_vgg", "--layers", "relu6", "--out", str(tmp_path),
                          "--quiet"]) == 0
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = [row["method"] for row in rows]
    assert methods[:3] == ["Grad-CAM", "Grad-CAM++", "CAM"]
    assert float(rows[0]["win_vs_gradcam"]) == 50.0   # Grad-CAM against itself
    for row in rows:
        assert 0 <= float(row["avg_drop"]) <= 100 and 0 <= float(row["loc_0"]) <= 1
        assert 0 <= float(row["off_target"]) <= 1
    text = (tmp_path / "metrics.md").read_text()
    assert "| shapes_vgg | relu6 | Grad-CAM++ |" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.md"]  # no temporaries, no lock


def test_evaluate_shares_one_capture_but_gives_the_methods_own_maps():
    torch.manual_seed(0)
    model, x = models.create_model("shapes_vgg").eval(), torch.rand(3, 3, 32, 32)
    maps = evaluate.gradient_maps(model, x, torch.tensor([0, 1, 3]), "relu4")
    torch.testing.assert_close(maps["Grad-CAM"], minicam.gradcam(model, x, [0, 1, 3], "relu4"))
    torch.testing.assert_close(maps["Grad-CAM++"], minicam.gradcam_pp(model, x, [0, 1, 3], "relu4"))


def test_evaluate_skips_a_model_without_weights_and_says_so(monkeypatch):
    def load(name):
        if name == "shapes_resnet":
            raise FileNotFoundError("shapes_resnet.pt is missing")
        torch.manual_seed(0)
        return models.create_model(name).eval()

    monkeypatch.setattr(models, "load_pretrained", load)
    rows, notes = evaluate.evaluate(["shapes_resnet", "shapes_vgg"], n=2, layers=["relu6"], progress=False)
    assert {row["model"] for row in rows} == {"shapes_vgg"}
    assert any("shapes_resnet skipped" in note for note in notes)
    with pytest.raises(FileNotFoundError, match="no model could be loaded"):
        evaluate.evaluate(["shapes_resnet"], n=2, progress=False)


# ---- issue 12, defect 8: every option checked before any work ---------------------------------------

def test_the_command_line_refuses_a_bad_option_without_a_traceback(tmp_path):
    """The real `python -m minicam evaluate`: usage, the option and what would be right, exit 2."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(minicam.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "minicam", "evaluate", "--seed", "-1", "--out", str(tmp_path / "r"),
                          "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert "Traceback" not in run.stderr and run.stderr.startswith("usage:")
    assert "--seed must be a non-negative integer" in run.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--n", "0"], "--n must be a positive integer"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--layers", "relu9"], "--layers: in model 'shapes_vgg': layer 'relu9' not found; layers must be among its "
                            "candidate layers: conv1, relu1, pool1, conv2, relu2"),
    (["--models", "shapes_vgg", "--layers", "fc"], "--layers: in model 'shapes_vgg': layer 'fc' cannot be used: it "
                                                   "does not output (N, K, h, w) maps"),
    (["--models", "shapes_resnet", "--layers", "layer4.0.relu"], "layer 'layer4.0.relu' cannot be used"),
    (["--models", "vgg"], "argument --models: invalid choice: 'vgg'"),
])
def test_every_bad_option_is_an_argparse_error_before_any_work(argv, message, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(evaluate, "held_out_pairs", lambda *a: pytest.fail("images were made before the check"))
    monkeypatch.setattr(evaluate, "evaluate", lambda *a: pytest.fail("the evaluation ran before the check"))
    with pytest.raises(SystemExit) as err:
        evaluate.main(argv + ["--out", str(tmp_path), "--quiet"])
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert message in stderr and "Traceback" not in stderr


def test_the_output_directory_is_probed_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate, "evaluate", lambda *a: pytest.fail("the evaluation ran before the probe"))
    afile = tmp_path / "a_file"
    afile.write_text("")
    with pytest.raises(SystemExit):
        evaluate.main(["--out", str(afile), "--quiet"])
    assert f"--out must be a folder, but {afile} is a file" in capsys.readouterr().err
    blocked = afile / "sub" / "dir"  # a directory that cannot be made: its parent is a file
    with pytest.raises(SystemExit):
        evaluate.main(["--out", str(blocked), "--quiet"])
    assert "--out must be a folder" in capsys.readouterr().err
    new = tmp_path / "not" / "yet"  # a directory that can be made: probed in its nearest parent, not made yet
    assert evaluate.OutputFolder(new).path == new and not (tmp_path / "not").exists()


def test_evaluate_checks_its_options_before_making_images(monkeypatch):
    monkeypatch.setattr(evaluate, "held_out_pairs", lambda *a: pytest.fail("images were made before the check"))
    for kwargs, error, message in [({"seed": -1}, ValueError, "seed must be"), ({"n": 2.5}, ValueError, "n must be"),
                                   ({"batch_size": 0}, ValueError, "batch_size must be"),
                                   ({"layers": ["relu9"]}, ValueError, "layer 'relu9' not found"),
                                   ({"layers": [6]}, TypeError, "layers must be")]:
        with pytest.raises(error, match=message):
            evaluate.evaluate(["shapes_vgg"], **{"n": 4, **kwargs}, progress=False)
    with pytest.raises(ValueError, match=r"models must be one or more of \['shapes_vgg'"):
        evaluate.evaluate("vgg", n=4, progress=False)


def test_one_string_is_one_model_and_one_layer():
    names, n, seed, layers, batch_size = evaluate.check_options("shapes_vgg", 4, np.int64(1000), "relu6", 10)
    assert (names, n, seed, layers, batch_size) == (["shapes_vgg"], 4, 1000, ["relu6"], 10)


def test_candidate_layers_are_the_maps_that_run_once():
    assert evaluate.candidate_layers(gap_model()) == ["conv1", "relu1", "pool", "conv2", "relu2", "gap"]
    resnet = minicam.models.ShapesResNet().eval()
    usable = evaluate.candidate_layers(resnet)
    assert "layer4" in usable and "layer2" in usable and "layer4.0.relu" not in usable and "fc" not in usable


# ---- issue 14: every class of an image from one forward pass -------------------------------------------

def test_pair_maps_are_the_maps_of_each_pair_with_one_forward_pass_per_image(pairs):
    model = gap_model()
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        got = evaluate.pair_maps(model, pairs, "relu2", batch_size=100)
    finally:
        handle.remove()
    expected = evaluate.method_maps(model, pairs["images"], pairs["classes"], "relu2")   # pair by pair
    assert list(got) == list(expected)
    for name in got:
        torch.testing.assert_close(got[name], expected[name])
    counts = torch.bincount(pairs["image"])
    assert counts.max() > 1 and len(counts.unique()) > 1   # images with several classes, and different numbers
    # per group of images with the same number of classes: the CAM family's one capture and Relevance-CAM's
    # one pass -- never one per pair
    assert len(calls) == 2 * len(counts.unique()) < 2 * len(pairs["classes"])
    shallow = evaluate.pair_maps(model, pairs, "relu1", batch_size=1)
    assert isinstance(shallow["CAM"], NotApplicable)
    torch.testing.assert_close(shallow["Grad-CAM"], minicam.gradcam(model, pairs["images"], pairs["classes"], "relu1"))


# ---- issue 22: the second hostile probe's defects 8 and 10 -----------------------------------------

def test_n_too_large_for_memory_is_one_message(tmp_path, monkeypatch, capsys):
    """Defect 10: evaluate --n 100000000 was a MemoryError traceback."""
    monkeypatch.setattr(evaluate, "evaluate", lambda *a: pytest.fail("the evaluation ran before the check"))
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--n", "100000000", "--out", str(tmp_path), "--quiet"])
    stderr = capsys.readouterr().err
    assert err.value.code == 2 and "--n 100000000 would need about" in stderr and "give at most" in stderr


def test_ctrl_c_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate", interrupted)
    try:
        code = evaluate.main(["--n", "4", "--models", "shapes_vgg", "--out", str(tmp_path / "r"), "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main: a traceback instead of exit status 130")
    assert code == 130 and "interrupted" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, capsys):
    fcntl = pytest.importorskip("fcntl")
    (tmp_path / "metrics.md").write_text("the first run's table\n")
    with open(tmp_path / ".minicam.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SystemExit) as err:
            evaluate.main(["--n", "2", "--models", "shapes_vgg", "--layers", "relu6", "--out", str(tmp_path), "--quiet"])
    assert err.value.code == 2 and "in use by another run" in capsys.readouterr().err
    assert (tmp_path / "metrics.md").read_text() == "the first run's table\n"
