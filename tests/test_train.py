"""minicam train (minicam.apps.train) without training: predict leaves the model as it was, and the command line checks every
option (the output path included) before any work, failing as argparse does (exit 2, no traceback).
The seeded training run itself is tested in test_models.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from minicam.apps import train as train_module
from minicam.apps.train import accuracy, check_options, main, predict, train
from minicam.models import CONTROLS, ShapesVGG


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 4))


# ---- predict and accuracy ------------------------------------------------------------------------

def test_predict_restores_the_models_mode():
    model, x = small_model().train(), torch.rand(5, 3, 8, 8)
    model[1].eval()   # a mixed state must come back mixed
    before = [m.training for m in model.modules()]
    logits = predict(model, x, batch_size=2)
    assert [m.training for m in model.modules()] == before   # before: everything left in eval mode
    with torch.no_grad():
        torch.testing.assert_close(logits, model.eval()(x))   # ...and computed in eval mode (no dropout)


def test_predict_restores_the_mode_when_the_model_raises():
    model = small_model().train()
    with pytest.raises(RuntimeError):
        predict(model, torch.rand(2, 5, 8, 8))   # wrong number of channels for the conv
    assert all(m.training for m in model.modules())


def test_predict_empty_and_batched():
    model, x = small_model().eval(), torch.rand(7, 3, 8, 8)
    torch.testing.assert_close(predict(model, x, batch_size=3), predict(model, x))
    assert predict(model, x[:0]).shape == (0, 4)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(images=torch.rand(2, 3, 8)), ValueError, "images"),
    (dict(images=torch.zeros(2, 3, 8, 8, dtype=torch.long)), TypeError, "images"),  # minicam.checks.check_images
    (dict(images=torch.full((2, 3, 8, 8), float("nan"))), ValueError, "images"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), ValueError, "batch_size"),
    (dict(batch_size="2"), TypeError, "batch_size"),
    (dict(model="shapes_vgg"), TypeError, "model"),
])
def test_predict_checks_its_arguments(kwargs, error, name):
    args = dict(model=small_model(), images=torch.rand(2, 3, 8, 8)) | kwargs
    with pytest.raises(error, match=f"^{name} "):
        predict(**args)


def test_accuracy_checks_labels():
    model, x = small_model(), torch.rand(3, 3, 8, 8)
    with pytest.raises(ValueError, match="^labels must be a"):
        accuracy(model, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="^labels must be multi-hot"):
        accuracy(model, x, torch.full((3, 4), 0.5))   # before: 0.5 was silently read as "present"
    with pytest.raises(ValueError, match="^labels has shape"):
        accuracy(model, x, torch.zeros(3, 5))
    per_label, exact, per_class = accuracy(model, x, torch.zeros(3, 4))
    assert 0 <= exact <= per_label <= 1 and per_class.shape == (4,)


# ---- options: checked before any work --------------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    """Make any training (or any image generation for it) fail the test."""
    def trained(*args, **kwargs):
        raise AssertionError("training started before the options were checked")
    monkeypatch.setattr(train_module, "_fit", trained)
    monkeypatch.setattr(train_module, "make_shapes", trained)
    monkeypatch.setattr(train_module, "save", trained)


UNWRITABLE = Path("/proc")   # no file can be created here, not even by root


def bad_outs(tmp_path):
    (tmp_path / "a_file").write_text("")
    outs = {"missing dir": (str(tmp_path / "nowhere" / "m.pt"), "does not exist"),
            "a directory": (str(tmp_path), "is a directory"),
            "under a file": (str(tmp_path / "a_file" / "m.pt"), "does not exist")}
    if UNWRITABLE.is_dir() and sys.platform.startswith("linux"):
        outs["unwritable"] = (str(UNWRITABLE / "m.pt"), "cannot write")
    return outs


@pytest.mark.parametrize("case", ["missing dir", "a directory", "under a file", "unwritable"])
def test_cli_refuses_a_bad_out_before_training(case, tmp_path, capsys, no_training):
    outs = bad_outs(tmp_path)
    if case not in outs:
        pytest.skip("no unwritable directory on this system")
    out, message = outs[case]
    with pytest.raises(SystemExit) as err:
        main(["shapes_vgg", "--epochs", "1", "--images", "64", "--out", out])
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "usage:" in stderr and "--out" in stderr and message in stderr
    with pytest.raises(OSError, match="^out"):   # the function says so too, before training
        train("shapes_vgg", epochs=1, images=64, out=out)


@pytest.mark.parametrize("argv, option", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-3"], "--epochs"),
    (["--epochs", "1000"], "--epochs"),      # would train on the held-out seeds
    (["--images", "0"], "--images"),
    (["--images", "-5"], "--images"),
    (["--report", "0"], "--report"),
    (["--seed", str(2 ** 64)], "--seed"),
    (["--epochs", "two"], "--epochs"),
])
def test_cli_refuses_bad_numbers_before_training(argv, option, tmp_path, capsys, no_training):
    with pytest.raises(SystemExit) as err:
        main(["shapes_vgg", "--out", str(tmp_path / "m.pt")] + argv)
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "usage:" in stderr and option in stderr
    assert not (tmp_path / "m.pt").exists()


def test_cli_all_probes_every_default_path_first(monkeypatch, capsys, no_training, tmp_path):
    # the shipped weights' directory may be read-only (an installed package): found before the first model
    paths = {"shapes_vgg": tmp_path / "vgg.pt", "shapes_resnet": tmp_path / "missing" / "resnet.pt",
             "shapes_vgg_biased": tmp_path / "biased.pt"}
    monkeypatch.setattr(train_module, "weights_path", paths.__getitem__)
    with pytest.raises(SystemExit) as err:
        main(["--all", "--epochs", "1"])
    assert err.value.code == 2 and "resnet.pt" in capsys.readouterr().err


def test_check_options_returns_the_config():
    cfg, seed, epochs, n, out = check_options("shapes_vgg_biased", out="x.pt")
    assert cfg["bias"] == "train" and (seed, epochs, n) == (0, cfg["epochs"], cfg["n"]) and out == Path("x.pt")
    import numpy as np
    assert check_options("shapes_vgg", seed=np.int64(3), epochs=np.int64(2), images=np.int64(64),
                         out="x.pt")[1:4] == (3, 2, 64)
    with pytest.raises(ValueError, match="^name must be one of"):
        check_options("shapes_vgg16")
    with pytest.raises(TypeError, match="^out must be a file path"):
        check_options("shapes_vgg", out=3)


def test_cli_error_is_not_a_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "minicam", "train", "shapes_vgg", "--epochs", "0",
                          "--out", str(tmp_path / "m.pt")], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "--epochs must be" in run.stderr


# ---- the shuffled-label control (the data-randomisation test) -----------------------------------------

def test_majority_rate_by_hand():
    from minicam.apps.train import majority_rate
    labels = torch.tensor([[1, 0, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]])
    # class 0 present in 3 of 4, class 1 absent in 3 of 4, class 2 half and half
    torch.testing.assert_close(majority_rate(labels), torch.tensor([0.75, 0.75, 0.5], dtype=torch.float64))


def test_the_shuffled_recipe_is_shapes_vggs_with_permuted_labels():
    recipe = {key: value for key, value in train_module.CONFIGS["shapes_vgg_shuffled"].items() if key != "shuffle"}
    assert recipe == {key: value for key, value in train_module.CONFIGS["shapes_vgg"].items() if key != "shuffle"}
    assert train_module.CONFIGS["shapes_vgg_shuffled"]["shuffle"] and not train_module.CONFIGS["shapes_vgg"]["shuffle"]
    assert [name for name in CONTROLS if "shuffled" in name] == ["shapes_vgg_shuffled"]


def spy_on_training(monkeypatch):
    """Record the images the model trains on and the labels the loss is given."""
    seen = {"images": [], "labels": []}

    class Recording(ShapesVGG):
        def forward(self, x):
            if self.training:
                seen["images"].append(x.detach().clone())
            return super().forward(x)

    class Loss(nn.BCEWithLogitsLoss):
        def forward(self, logits, labels):
            seen["labels"].append(labels.clone())
            return super().forward(logits, labels)

    monkeypatch.setattr(train_module, "ShapesVGG", Recording)
    monkeypatch.setattr(train_module.nn, "BCEWithLogitsLoss", Loss)
    return seen


def test_the_shuffled_model_sees_the_same_images_with_other_images_labels(monkeypatch, tmp_path, capsys):
    from minicam.data import make_shapes
    runs = {}
    for name in ("shapes_vgg", "shapes_vgg_shuffled"):
        seen = spy_on_training(monkeypatch)
        train(name, epochs=1, images=32, out=tmp_path / f"{name}.pt")
        runs[name] = torch.cat(seen["images"]), torch.cat(seen["labels"])
    data = make_shapes(32, seed=0)                      # epoch 0's images
    images, labels = runs["shapes_vgg"]
    torch.testing.assert_close(runs["shapes_vgg_shuffled"][0], images, rtol=0, atol=0)   # same images, same order
    flat = data.images.flatten(1)
    order = torch.tensor([int((flat == image.flatten()).all(1).nonzero()[0]) for image in images])
    assert sorted(order.tolist()) == list(range(32))
    permutation = torch.randperm(32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(labels, data.labels[order])
    torch.testing.assert_close(runs["shapes_vgg_shuffled"][1], data.labels[permutation][order])
    assert not torch.equal(runs["shapes_vgg_shuffled"][1], labels)


# ---- issue 22: the second hostile probe's defects 9 and 10 ------------------------------------------

def test_a_full_disk_loses_neither_the_old_weights_nor_the_training(tmp_path, monkeypatch, capsys):
    """Defect 9: torch.save truncated the old weights file before writing, so a full disk lost both."""
    import errno
    out = tmp_path / "shapes_vgg.pt"
    out.write_bytes(b"the previous weights")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):   # the disk fills up in the middle of --out's new weights
        name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "")
        if isinstance(name, (str, os.PathLike)) and Path(name).parent == tmp_path:
            (open(name, "wb") if isinstance(f, (str, os.PathLike)) else f).write(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(train_module.torch, "save", full_disk)
    monkeypatch.setattr(train_module, "report", lambda *args, **kwargs: None)
    code = main(["shapes_vgg", "--epochs", "1", "--images", "32", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and f"{out} is as it was" in err
    assert out.read_bytes() == b"the previous weights" and sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    kept = Path(err.split("the trained weights are saved in ", 1)[1].split(":", 1)[0])
    state = torch.load(kept, weights_only=True)
    kept.unlink()
    assert set(state) == set(ShapesVGG().state_dict())   # the training is not lost


def test_weights_are_written_under_a_temporary_name_then_renamed(tmp_path, monkeypatch):
    out = tmp_path / "m.pt"
    out.write_bytes(b"old")
    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (renamed.append((Path(source), Path(target))),
                                                               replace(source, target)))
    monkeypatch.setattr(train_module, "report", lambda *args, **kwargs: None)
    assert main(["shapes_vgg", "--epochs", "1", "--images", "32", "--out", str(out)]) == 0
    ((source, target),) = renamed
    assert target == out and source.parent == tmp_path and source.name.startswith(".")
    assert set(torch.load(out, weights_only=True)) == set(ShapesVGG().state_dict())


@pytest.mark.parametrize("argv, message", [
    (["--out", "/dev/full"], "--out must be a regular file, but /dev/full is a device"),
    (["--images", "100000000"], "--images 100000000 would need about"),
    (["--report", "100000000"], "--report 100000000 would need about"),
])
def test_a_device_or_an_impossible_size_is_one_message_before_training(argv, message, capsys, no_training, tmp_path):
    """Defect 9/10: --out /dev/full lost the finished training; --images 1e8 was a MemoryError traceback."""
    if argv[1] == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    argv = argv if "--out" in argv else argv + ["--out", str(tmp_path / "m.pt")]
    with pytest.raises(SystemExit) as err:
        main(["shapes_vgg", "--epochs", "1"] + argv)
    stderr = capsys.readouterr().err
    assert err.value.code == 2 and message in stderr and "Traceback" not in stderr


def test_ctrl_c_exits_130_and_leaves_the_old_weights(tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_fit", interrupted)
    try:
        code = main(["shapes_vgg", "--epochs", "1", "--images", "32", "--out", str(out)])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main: a traceback instead of exit status 130")
    assert code == 130 and "interrupted" in capsys.readouterr().err and out.read_bytes() == b"old"
